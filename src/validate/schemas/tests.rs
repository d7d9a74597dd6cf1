use std::io::Write as _;

use super::*;

fn schema_file(dir: &tempfile::TempDir, name: &str, schema: &str) -> PathBuf {
    let path = dir.path().join(name);
    let mut file = std::fs::File::create(&path).expect("create schema file");
    file.write_all(schema.as_bytes()).expect("write schema");
    path
}

const ORDER: &str = r#"{
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["pedido", "itens"],
    "properties": {
        "pedido": {"type": "string", "minLength": 1},
        "itens": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "required": ["quantidade"],
            "properties": {"quantidade": {"type": "number", "exclusiveMinimum": 0}}
        }}
    }
}"#;

fn loaded(dir: &tempfile::TempDir, topic: &str) -> Schemas {
    let entry = TopicSchema {
        topic: topic.to_owned(),
        schema: schema_file(dir, "order.json", ORDER),
    };
    Schemas::load(&[entry]).expect("valid schema")
}

#[test]
fn every_violation_is_reported_with_a_json_pointer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schemas = loaded(&dir, "pedidos");
    let value = br#"{"itens": [{"quantidade": 2}, {"quantidade": "dez"}, {}]}"#;

    let violations = schemas.check("pedidos", Some(value)).expect_err("invalid");

    let mut pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
    pointers.sort_unstable();
    assert_eq!(
        pointers,
        ["", "/itens/1/quantidade", "/itens/2"],
        "{violations:?}"
    );
    assert!(violations.iter().all(|v| !v.message.is_empty()));
    assert!(
        violations
            .iter()
            .any(|v| v.pointer.is_empty() && v.message.contains("pedido"))
    );
}

#[test]
fn valid_values_and_topics_without_a_schema_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schemas = loaded(&dir, "erp.pedidos*");
    let valid = br#"{"pedido": "000123", "itens": [{"quantidade": 1.5}]}"#;

    assert_eq!(schemas.check("erp.pedidos-venda", Some(valid)), Ok(()));
    assert_eq!(schemas.check("outro", Some(b"not even JSON")), Ok(()));
    assert!(
        schemas.check("erp.pedidos", Some(b"{}")).is_err(),
        "the pattern matches"
    );
}

#[test]
fn a_value_that_is_not_json_or_is_null_breaks_the_schema() {
    let dir = tempfile::tempdir().expect("temp dir");
    let schemas = loaded(&dir, "pedidos");

    let binary = schemas
        .check("pedidos", Some(&[0xff, 0x00]))
        .expect_err("not JSON");
    let null = schemas.check("pedidos", None).expect_err("null");

    assert_eq!(binary[0].pointer, "");
    assert!(binary[0].message.contains("not JSON"));
    assert_eq!(null[0].pointer, "");
}

#[test]
fn the_first_matching_entry_applies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let strict = schema_file(&dir, "strict.json", r#"{"type": "integer"}"#);
    let loose = schema_file(&dir, "loose.json", "true");
    let entries = [
        TopicSchema {
            topic: "numeros".to_owned(),
            schema: strict,
        },
        TopicSchema {
            topic: "*".to_owned(),
            schema: loose,
        },
    ];
    let schemas = Schemas::load(&entries).expect("valid");

    assert!(schemas.check("numeros", Some(b"\"um\"")).is_err());
    assert_eq!(schemas.check("textos", Some(b"\"um\"")), Ok(()));
}

#[test]
fn unreadable_unparsable_and_invalid_schemas_are_refused_with_their_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let entry = |schema: PathBuf| {
        [TopicSchema {
            topic: "t".to_owned(),
            schema,
        }]
    };
    let missing = Schemas::load(&entry(dir.path().join("absent.json"))).expect_err("missing");
    let broken = Schemas::load(&entry(schema_file(&dir, "broken.json", "{"))).expect_err("json");
    let wrong = schema_file(&dir, "wrong.json", r#"{"type": "no-such-type"}"#);
    let invalid = Schemas::load(&entry(wrong)).expect_err("schema");

    assert!(matches!(missing, SchemaError::Unreadable { .. }));
    assert!(matches!(broken, SchemaError::NotJson { .. }));
    assert!(matches!(invalid, SchemaError::Invalid { .. }));
    assert!(invalid.to_string().contains("wrong.json"), "{invalid}");
}
