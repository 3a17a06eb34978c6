use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::*;

#[test]
fn a_short_app_key_is_rejected() {
    assert!(matches!(
        decode_app_key(&BASE64.encode([1u8; 31])),
        Err(ConfigError::BadAppKey)
    ));
}

#[test]
fn laravel_s_key_is_accepted_and_stretched_for_signing() {
    let laravel = format!("base64:{}", BASE64.encode([5u8; 32]));
    let mut config = config_with_key(decode_app_key(&laravel).unwrap());
    let cookies = config.signing_key("cookies");
    assert_eq!(cookies.len(), 64);
    assert_ne!(cookies, config.signing_key("csrf"), "one key per purpose");
    assert_ne!(&cookies[..32], &[5u8; 32][..]);
    assert_eq!(
        config.legacy_session_key(),
        None,
        "short keys were stretched"
    );
    config.app_key = decode_app_key(&BASE64.encode([7u8; 64])).unwrap();
    let cookies = config.signing_key("cookies");
    assert_ne!(cookies, vec![7u8; 64], "a long key is derived from too");
    assert_ne!(cookies, config.signing_key("csrf"), "one key per purpose");
    assert_eq!(config.legacy_session_key(), Some(vec![7u8; 64]));
}

fn config_with_key(app_key: SecretBox<Vec<u8>>) -> Config {
    Config {
        database_url: DEFAULT_DATABASE_URL.into(),
        stripe: None,
        webhook_secret: None,
        app_url: DEFAULT_APP_URL.into(),
        app_key,
        bind: DEFAULT_BIND.into(),
        metrics_bind: None,
        run_history_days: DEFAULT_RUN_HISTORY_DAYS,
        log_dir: DEFAULT_LOG_DIR.into(),
        log_max_files: 1,
        log_format: LogFormat::Text,
        events_retention_days: DEFAULT_EVENTS_RETENTION_DAYS,
        job_posting: JobPosting::default(),
        trusted_proxies: Vec::new(),
        password_hash_concurrency: 1,
        password_hasher: None,
        limits: Limits::default(),
        db_max_connections: 1,
        stripe_endpoint_rate: DEFAULT_STRIPE_ENDPOINT_RATE,
        http_timeouts: HttpTimeouts::default(),
        customer_fields: Default::default(),
        mail: None,
        register_reveals_accounts: true,
    }
}

#[test]
fn the_password_hasher_is_one_of_two() {
    assert_eq!(
        PasswordScheme::parse("bcrypt"),
        Some(PasswordScheme::Bcrypt)
    );
    assert_eq!(
        PasswordScheme::parse(" Argon2id "),
        Some(PasswordScheme::Argon2id)
    );
    assert_eq!(PasswordScheme::parse("md5"), None);
}

#[test]
fn a_64_byte_app_key_is_accepted_with_or_without_laravel_prefix() {
    let encoded = BASE64.encode([7u8; 64]);
    assert_eq!(decode_app_key(&encoded).unwrap().expose_secret().len(), 64);
    let prefixed = format!("base64:{encoded}");
    assert_eq!(decode_app_key(&prefixed).unwrap().expose_secret().len(), 64);
}

#[test]
fn the_job_posting_fee_must_be_a_positive_amount_in_a_known_shape_of_currency() {
    let parse =
        |fee: &str, currency: &str| JobPosting::parse(Some(fee.into()), Some(currency.into()));
    assert!(matches!(parse("0", "usd"), Err(ConfigError::BadFee)));
    assert!(matches!(parse("49.00", "usd"), Err(ConfigError::BadFee)));
    assert!(matches!(
        parse("4900", "dollars"),
        Err(ConfigError::BadCurrency)
    ));
    let posting = parse("1500", " EUR ").unwrap();
    assert_eq!((posting.fee, posting.currency.as_str()), (1500, "eur"));
}

#[test]
fn only_database_schemes_with_a_driver_are_accepted() {
    for good in [
        "sqlite://storage/app.db",
        "sqlite::memory:",
        "postgres://u@h/db",
        "postgresql://u@h/db",
    ] {
        assert!(check_database_url(good).is_ok(), "{good}");
    }
    for bad in [
        "postgress://u:secret@h/db",
        "mysqll://h/db",
        "storage/app.db",
    ] {
        let err = check_database_url(bad).unwrap_err().to_string();
        assert!(err.contains("sqlite:, postgres://"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
    for (bad, says) in [
        ("sqlite://u:Secret@/tmp/app.db", "takes no user or password"),
        (
            "sqlite:///no/such/folder/app.db",
            "folder of the SQLite file does not exist",
        ),
        (
            "mysql://root:Secret@127.0.0.1:3306",
            "must name its database",
        ),
        (
            "postgres://u:Secret@h:notaport/db",
            "cannot be read as a PostgreSQL URL",
        ),
    ] {
        let err = check_database_url(bad).unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
        assert!(!err.contains("Secret"), "{err}");
    }
}

#[test]
fn only_https_or_a_loopback_stand_in_is_private() {
    let stripe = |api_base: &str| StripeConfig {
        secret: SecretString::from("sk_live_x"),
        publishable_key: None,
        api_base: api_base.into(),
    };
    for private in [
        "https://api.stripe.com",
        "http://127.0.0.1:8420",
        "http://127.8.0.1/",
        "http://localhost:12111",
        "http://[::1]:9000/v1",
    ] {
        assert!(stripe(private).api_base_is_private(), "{private}");
    }
    for exposed in [
        "http://api.stripe.com",
        "http://10.0.0.5:8420",
        "http://127.0.0.1.evil.example",
        "http://127.0.0.1@evil.example",
        "ftp://127.0.0.1",
    ] {
        assert!(!stripe(exposed).api_base_is_private(), "{exposed}");
    }
}

#[test]
fn whole_number_settings_must_be_in_range() {
    let parse = |value: Option<&str>| {
        whole_number(
            value.map(String::from),
            3..=3650,
            30u32,
            ConfigError::BadEventsRetention,
        )
    };
    assert_eq!(parse(None).unwrap(), 30);
    assert_eq!(parse(Some(" 7 ")).unwrap(), 7);
    for bad in ["2", "3651", "-1", "seven", ""] {
        assert!(
            matches!(parse(Some(bad)), Err(ConfigError::BadEventsRetention)),
            "{bad}"
        );
    }
}

#[test]
fn trusted_proxies_are_addresses_or_networks() {
    let proxies = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8,::1").unwrap();
    assert_eq!(proxies.len(), 3);
    assert!(proxies[1].contains(&"10.1.2.3".parse::<IpAddr>().unwrap()));
    assert!(matches!(
        parse_trusted_proxies("10.0.0.0/8,proxy.local"),
        Err(ConfigError::BadTrustedProxy(item)) if item == "proxy.local"
    ));
}

#[test]
fn debug_output_never_shows_the_stripe_secret() {
    let stripe = StripeConfig {
        secret: SecretString::from("sk_test_do_not_print"),
        publishable_key: None,
        api_base: DEFAULT_STRIPE_API_BASE.into(),
    };
    assert!(!format!("{stripe:?}").contains("do_not_print"));
}

#[test]
fn metrics_are_never_served_on_the_public_listener() {
    assert_eq!(
        parse_metrics_bind("127.0.0.1:9464", "127.0.0.1:3000").unwrap(),
        "127.0.0.1:9464".parse().unwrap()
    );
    for (metrics, bind) in [
        ("127.0.0.1:3000", "127.0.0.1:3000"),
        ("0.0.0.0:3000", "127.0.0.1:3000"),
        ("127.0.0.1:3000", "0.0.0.0:3000"),
        ("localhost:9464", "127.0.0.1:3000"),
        ("9464", "127.0.0.1:3000"),
    ] {
        assert!(
            matches!(
                parse_metrics_bind(metrics, bind),
                Err(ConfigError::BadMetricsBind)
            ),
            "{metrics} beside {bind}"
        );
    }
}

/// `Config::parse` over a map of settings, with a key that is never written.
fn parse(settings: &[(&str, &str)]) -> (Result<Config, ConfigError>, Option<Option<String>>) {
    let map: std::collections::HashMap<String, String> = settings
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let asked = std::cell::RefCell::new(None);
    let config = Config::parse(
        |name| map.get(name).cloned(),
        |given| {
            *asked.borrow_mut() = Some(given.map(str::to_string));
            Ok(SecretBox::new(Box::new(vec![3u8; 64])))
        },
    );
    (config, asked.into_inner())
}

#[test]
fn settings_parse_from_any_lookup_and_the_key_is_asked_for_last() {
    let (config, asked) = parse(&[
        ("DATABASE_URL", "postgres://app@db.internal/app"),
        ("RUN_HISTORY_DAYS", "30"),
        ("APP_KEY", "  "),
    ]);
    let config = config.unwrap();
    assert_eq!(config.database_url, "postgres://app@db.internal/app");
    assert_eq!(config.run_history_days, 30);
    assert_eq!(
        asked,
        Some(None),
        "a blank APP_KEY is unset: the key is startup's to find"
    );
    assert_eq!(config.app_key_bytes(), &[3u8; 64][..]);

    // A bad setting stops the parse before the key is asked for (and so before
    // startup could write a key file).
    let (refused, asked) = parse(&[("RUN_HISTORY_DAYS", "0")]);
    assert!(refused.is_err());
    assert_eq!(asked, None);
}
