use super::*;

fn ring(scopes: &[&str]) -> (KeyRing, String) {
    let secret = new_secret();
    let configured = ApiKeyConfig {
        name: "erp".to_owned(),
        hash: hash_secret(&secret),
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        client_certificate_sha256: None,
    };
    (KeyRing::new(&[configured]).expect("valid key"), secret)
}

#[test]
fn the_right_secret_identifies_its_key_and_any_other_does_not() {
    let (keys, secret) = ring(&["read"]);

    assert_eq!(keys.identify(&secret).map(Key::name), Some("erp"));
    assert!(keys.identify("guess").is_none());
    assert!(keys.identify(&secret[1..]).is_none());
}

#[test]
fn produce_patterns_match_topic_names() {
    let (keys, secret) = ring(&["produce:protheus-*"]);
    let key = keys.identify(&secret).expect("key");

    assert!(key.allows(&Need::Produce("protheus-notas-fiscais".to_owned())));
    assert!(!key.allows(&Need::Produce("financeiro".to_owned())));
    assert!(!key.allows(&Need::Read));
    assert!(key.allows(&Need::Nothing));
}

#[test]
fn each_scope_covers_only_its_own_need() {
    let (keys, secret) = ring(&["read", "replay"]);
    let key = keys.identify(&secret).expect("key");

    assert!(key.allows(&Need::Read));
    assert!(key.allows(&Need::Replay));
    assert!(!key.allows(&Need::Admin));
    assert!(!key.allows(&Need::Produce("t".to_owned())));
}

#[test]
fn bad_configuration_is_refused_with_the_reason() {
    let key = |name: &str, hash: &str, scope: &str| ApiKeyConfig {
        name: name.to_owned(),
        hash: hash.to_owned(),
        scopes: vec![scope.to_owned()],
        client_certificate_sha256: None,
    };
    let good = hash_secret("s");

    let cases = [
        (vec![key("a", "md5:00", "read")], "hash"),
        (vec![key("a", &good, "write")], "unknown scope"),
        (
            vec![key("a", &good, "read"), key("a", &good, "read")],
            "unique",
        ),
    ];
    for (configured, expected) in cases {
        let error = KeyRing::new(&configured).expect_err("refused");
        assert!(error.contains(expected), "{error}");
    }
}

#[test]
fn secrets_are_long_and_distinct_and_hashes_have_the_stored_form() {
    let (a, b) = (new_secret(), new_secret());

    assert_ne!(a, b);
    assert_eq!(a.len(), 43);
    assert!(hash_secret(&a).starts_with("sha256:"));
    assert_eq!(hash_secret(&a).len(), 7 + 64);
}
