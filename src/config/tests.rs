// figment's Jail API hands its (large) error type around by value.
#![allow(clippy::result_large_err)]

use figment::Jail;

use super::*;

/// Loads settings in a jail with a clean environment, returning the result as a
/// string error so that it can be inspected inside the jail.
fn load_in_jail(
    setup: impl FnOnce(&mut Jail) -> figment::error::Result<Overrides>,
    check: impl FnOnce(Result<Settings, ConfigError>),
) {
    Jail::expect_with(|jail| {
        jail.clear_env();
        let overrides = setup(jail)?;
        check(Settings::load(&overrides));
        Ok(())
    });
}

fn error_text(result: Result<Settings, ConfigError>) -> String {
    result.expect_err("settings must be refused").to_string()
}

#[test]
fn nothing_configured_gives_the_documented_defaults() {
    load_in_jail(
        |_| Ok(Overrides::default()),
        |settings| {
            let settings = settings.expect("defaults are valid");
            assert_eq!(settings, Settings::default());
            assert_eq!(settings.port, 8081);
            assert_eq!(settings.kafka_brokers, "localhost:9092");
            assert!(settings.enable_outbox);
            assert_eq!(settings.dlq_topic, "dlq-topic");
            assert_eq!(settings.max_body_bytes, 1_048_588);
        },
    );
}

#[test]
fn the_middleware_variables_keep_their_names_and_meaning() {
    load_in_jail(
        |jail| {
            jail.set_env("PORT", "9000");
            jail.set_env("KAFKA_BROKERS", "k1:9092, k2:9093");
            jail.set_env("LOG_LEVEL", "debug");
            jail.set_env("ENABLE_OUTBOX", "false");
            jail.set_env("DLQ_TOPIC", "mortos");
            Ok(Overrides::default())
        },
        |settings| {
            let settings = settings.expect("valid");
            assert_eq!(settings.port, 9000);
            assert_eq!(settings.broker_list(), ["k1:9092", "k2:9093"]);
            assert_eq!(settings.log_level, LogLevel::Debug);
            assert!(!settings.enable_outbox);
            assert_eq!(settings.dlq_topic, "mortos");
        },
    );
}

#[test]
fn flags_win_over_the_environment_which_wins_over_the_file() {
    load_in_jail(
        |jail| {
            jail.create_file(
                "ponte.toml",
                "port = 1\nack_timeout_ms = 10\nkafka_linger_ms = 7",
            )?;
            jail.set_env("PORT", "2");
            jail.set_env("PONTE_ACK_TIMEOUT_MS", "20");
            Ok(Overrides {
                config: Some("ponte.toml".into()),
                port: Some(3),
                ..Overrides::default()
            })
        },
        |settings| {
            let settings = settings.expect("valid");
            assert_eq!(settings.port, 3);
            assert_eq!(settings.ack_timeout_ms, 20);
            assert_eq!(settings.kafka_linger_ms, 7);
        },
    );
}

#[test]
fn librdkafka_properties_come_from_file_environment_and_flags() {
    load_in_jail(
        |jail| {
            jail.create_file(
                "ponte.toml",
                "[kafka_properties]\nsecurity.protocol = \"ssl\"\n\"socket.timeout.ms\" = 9000\n",
            )?;
            jail.set_env("PONTE_RDKAFKA_SSL_CA_LOCATION", "/etc/ca.pem");
            Ok(Overrides {
                config: Some("ponte.toml".into()),
                kafka_property: vec!["client.id=erp-bridge".to_owned()],
                ..Overrides::default()
            })
        },
        |settings| {
            let properties = settings.expect("valid").kafka_properties;
            assert_eq!(properties["security.protocol"], "ssl");
            assert_eq!(properties["socket.timeout.ms"], "9000");
            assert_eq!(properties["ssl.ca.location"], "/etc/ca.pem");
            assert_eq!(properties["client.id"], "erp-bridge");
        },
    );
}

#[test]
fn any_setting_can_be_given_with_set() {
    load_in_jail(
        |_| {
            Ok(Overrides {
                set: vec![
                    "outbox_max_batch=64".to_owned(),
                    "record_source=erp".to_owned(),
                ],
                ..Overrides::default()
            })
        },
        |settings| {
            let settings = settings.expect("valid");
            assert_eq!(settings.outbox_max_batch, 64);
            assert_eq!(settings.record_source, "erp");
        },
    );
}

#[test]
fn an_unknown_prefixed_variable_is_named_in_the_error() {
    load_in_jail(
        |jail| {
            jail.set_env("PONTE_ACK_TIMEOUT", "5");
            Ok(Overrides::default())
        },
        |settings| {
            assert!(
                error_text(settings).contains("ack_timeout"),
                "names the variable"
            );
        },
    );
}

#[test]
fn an_unknown_key_in_the_file_is_named_in_the_error() {
    load_in_jail(
        |jail| {
            jail.create_file("ponte.toml", "prot = 1")?;
            Ok(Overrides {
                config: Some("ponte.toml".into()),
                ..Overrides::default()
            })
        },
        |settings| assert!(error_text(settings).contains("prot"), "names the key"),
    );
}

#[test]
fn a_value_of_the_wrong_type_names_the_setting_and_its_source() {
    load_in_jail(
        |jail| {
            jail.set_env("PORT", "oito");
            Ok(Overrides::default())
        },
        |settings| {
            let text = error_text(settings);
            assert!(text.contains("PORT") && text.contains("u16"), "{text}");
        },
    );
}

#[test]
fn unusable_values_are_refused_with_the_reason() {
    let cases = [
        ("KAFKA_BROKERS", "kafka", "kafka_brokers"),
        ("KAFKA_BROKERS", " , ", "no broker"),
        ("DLQ_TOPIC", "dead letters", "dlq_topic"),
        ("PONTE_MAX_BODY_BYTES", "0", "max_body_bytes"),
        ("PONTE_KAFKA_LINGER_MS", "60000", "kafka_linger_ms"),
        ("LOG_LEVEL", "verbose", "LOG_LEVEL"),
        ("ENABLE_OUTBOX", "sim", "ENABLE_OUTBOX"),
    ];
    for (variable, value, expected) in cases {
        load_in_jail(
            |jail| {
                jail.set_env(variable, value);
                Ok(Overrides::default())
            },
            |settings| {
                let text = error_text(settings);
                assert!(text.contains(expected), "{variable}={value}: {text}");
            },
        );
    }
}

#[test]
fn properties_that_would_weaken_the_guarantees_are_refused() {
    for property in [
        "acks=1",
        "enable.idempotence=false",
        "bootstrap.servers=x:1",
    ] {
        load_in_jail(
            |_| {
                Ok(Overrides {
                    kafka_property: vec![property.to_owned()],
                    ..Overrides::default()
                })
            },
            |settings| {
                let text = error_text(settings);
                let name = property.split('=').next().unwrap_or_default();
                assert!(
                    text.contains(name) && text.contains("managed by ponte"),
                    "{text}"
                );
            },
        );
    }
}

#[test]
fn a_missing_configuration_file_is_an_error() {
    load_in_jail(
        |_| {
            Ok(Overrides {
                config: Some("nowhere.toml".into()),
                ..Overrides::default()
            })
        },
        |settings| assert!(error_text(settings).contains("nowhere.toml")),
    );
}

#[test]
fn secrets_are_masked_and_the_rest_shown() {
    let properties = BTreeMap::from([
        ("sasl.password".to_owned(), "hunter2".to_owned()),
        ("ssl.key.pem".to_owned(), "-----BEGIN".to_owned()),
        ("sasl.username".to_owned(), "erp".to_owned()),
    ]);
    let masked = mask_secrets(&properties);
    assert_eq!(masked["sasl.password"], "********");
    assert_eq!(masked["ssl.key.pem"], "********");
    assert_eq!(masked["sasl.username"], "erp");
}

#[test]
fn the_example_file_states_exactly_the_defaults() {
    let example = include_str!("../../ponte.example.toml");
    load_in_jail(
        |jail| {
            jail.create_file("ponte.toml", example)?;
            Ok(Overrides {
                config: Some("ponte.toml".into()),
                ..Overrides::default()
            })
        },
        |settings| assert_eq!(settings.expect("example is valid"), Settings::default()),
    );
}

#[test]
fn the_example_file_mentions_every_setting() {
    let example = include_str!("../../ponte.example.toml");
    let defaults = serde_json::to_value(Settings::default()).expect("serialisable");
    let names = defaults.as_object().expect("a table").keys();

    let missing: Vec<&String> = names
        .filter(|name| {
            !example.contains(&format!("\n{name} =")) && !example.contains(&format!("\n# {name} ="))
        })
        .filter(|name| {
            !matches!(
                name.as_str(),
                "kafka_properties" | "api_keys" | "kafka_secret_files" | "topic_schemas"
            )
        })
        .collect();

    assert!(missing.is_empty(), "not in ponte.example.toml: {missing:?}");
    assert!(example.contains("\n[kafka_properties]"));
    assert!(example.contains("[[api_keys]]"));
    assert!(example.contains("[[topic_schemas]]"));
    assert!(example.contains("\n[kafka_secret_files]"));
}
