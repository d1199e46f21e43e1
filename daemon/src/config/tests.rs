use std::io::Write;

use super::*;
use crate::config::{AudioBackend, Ports, Transport};

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("temp file");
    f.write_all(text.as_bytes()).expect("write");
    f
}

fn sources(files: &[&tempfile::NamedTempFile]) -> Sources {
    Sources {
        system: files.first().map(|f| f.path().to_owned()),
        user: files.get(1).map(|f| f.path().to_owned()),
        explicit: files.get(2).map(|f| f.path().to_owned()),
        overrides: toml::Table::new(),
    }
}

#[test]
fn full_example_parses() {
    let f = file(
        r#"
[api]
port = 9443
allowed_origins = ["https://crm.example.com"]

[account]
server = "pbx.example.com"
transport = "tls"
username = "1001"
password = "s3cret"
turn_port = 3478

[audio]
backend = "file"
input_file = "tone.wav"

[log]
debug_console = true

[[presence.status]]
softphoneId = "d6afeaa7-39be-4935-981f-2670215fd887"
name = "Ready"
"#,
    );
    let (config, _) = parse_file(f.path()).expect("valid");
    assert_eq!(config.api.port, Ports::single(9443));
    let account = config.account.expect("account");
    assert_eq!(account.transport, Transport::Tls);
    assert_eq!(account.password.expose(), "s3cret");
    assert_eq!(
        format!("{:?}", account.password),
        "***",
        "secrets never print"
    );
    assert_eq!(config.audio.backend, AudioBackend::File);
    assert_eq!(config.presence.status[0].name, "Ready");
}

#[test]
fn unknown_key_names_file_key_and_line() {
    let f = file("[api]\nport = 1\nprot = 2\n");
    let err = parse_file(f.path()).expect_err("unknown key").to_string();
    assert!(err.contains(&f.path().display().to_string()), "{err}");
    assert!(err.contains("prot"), "{err}");
    assert!(err.contains(":3:"), "line 3: {err}");
}

#[test]
fn wrong_type_names_key_and_expected_type() {
    let f = file("[api]\nactions_per_second = \"abc\"\n");
    let err = parse_file(f.path()).expect_err("wrong type").to_string();
    assert!(err.contains("api.actions_per_second"), "{err}");
    assert!(err.contains("u32"), "{err}");
    let f = file("[api]\nport = \"abc\"\n");
    let err = parse_file(f.path()).expect_err("not a port").to_string();
    assert!(err.contains("api.port") && err.contains(":2:"), "{err}");
    assert!(err.contains("`abc` is not a port"), "{err}");
}

#[test]
fn bad_origin_and_duplicate_status_are_errors() {
    let f = file("[api]\nallowed_origins = [\"https://ok.example\", \"crm.example.com\"]\n");
    let err = parse_file(f.path()).expect_err("bad origin").to_string();
    assert!(err.contains("api.allowed_origins[1]"), "{err}");
    let f = file(
        "[[presence.status]]\nsoftphoneId = \"a\"\nname = \"A\"\n[[presence.status]]\nsoftphoneId = \"a\"\nname = \"B\"\n",
    );
    assert!(
        parse_file(f.path())
            .expect_err("dup")
            .to_string()
            .contains("duplicate")
    );
    let f = file("[presence]\ninitial = \"nope\"\n");
    assert!(
        parse_file(f.path())
            .expect_err("initial")
            .to_string()
            .contains("presence.initial")
    );
}

#[test]
fn layers_override_key_by_key() {
    let system = file(
        "[api]\nport = 1000\nallowed_origins = [\"https://it.example\"]\n[log]\nlevel = \"warn\"\n",
    );
    let user = file("[api]\nport = 2000\n");
    let explicit = file("[log]\nlevel = \"debug\"\n");
    let mut s = sources(&[&system, &user, &explicit]);
    let (config, used) = load(&s).expect("loads");
    assert_eq!(used.len(), 3);
    assert_eq!(config.api.port, Ports::single(2000), "user beats system");
    assert_eq!(
        config.api.allowed_origins,
        ["https://it.example"],
        "untouched keys survive"
    );
    assert_eq!(config.log.level, "debug", "--config beats both");
    let mut api = toml::Table::new();
    api.insert("port".into(), toml::Value::Integer(3000));
    s.overrides.insert("api".into(), toml::Value::Table(api));
    assert_eq!(
        load(&s).expect("loads").0.api.port,
        Ports::single(3000),
        "flags beat files"
    );
}

#[test]
fn missing_optional_files_are_skipped_but_explicit_must_exist() {
    let s = Sources {
        system: Some("/nonexistent/a.toml".into()),
        user: None,
        explicit: None,
        overrides: toml::Table::new(),
    };
    assert_eq!(load(&s).expect("defaults").0, Config::default());
    let s = Sources {
        explicit: Some("/nonexistent/b.toml".into()),
        ..Sources::default()
    };
    assert!(matches!(load(&s), Err(ConfigError::Read { .. })));
}

#[test]
fn every_example_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/config");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("examples/config exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 2, "examples/config has examples");
}

/// Security review, finding 14: `password = 5` echoed the value in the error.
#[test]
fn errors_about_secret_keys_never_show_the_value() {
    for text in [
        "[account]\nserver = \"127.0.0.1\"\nusername = \"1\"\npassword = 555123\n",
        "[account]\nserver = \"127.0.0.1\"\nusername = \"1\"\npassword = \"x\"\nauth_key = [\"sekrit77\"]\n",
        "[account]\nserver = \"127.0.0.1\"\nusername = \"1\"\npassword = 555123x\n",
    ] {
        let config = file(text);
        let message = parse_file(config.path())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(message.contains("not shown"), "{message}");
        for secret in ["555123", "sekrit77"] {
            assert!(!message.contains(secret), "{message}");
        }
    }
}

#[test]
fn provisioning_is_off_by_default_when_it_configured_an_account() {
    let config = crate::config::ProvisioningConfig::default();
    assert!(config.pages_may_provision(false));
    assert!(!config.pages_may_provision(true));
    let on = crate::config::ProvisioningConfig {
        allowed: Some(true),
        ..Default::default()
    };
    assert!(on.pages_may_provision(true));
}

#[test]
fn provisioning_origins_are_checked_like_api_origins() {
    let config = file("[provisioning]\nallowed_origins = [\"https://crm.example.com/\"]\n");
    let message = parse_file(config.path())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        message.contains("provisioning.allowed_origins[0]"),
        "{message}"
    );
}

#[test]
fn notification_endpoints_are_https_with_a_secret_and_no_credentials_in_the_url() {
    let parse = |url: &str, secret: &str| {
        let f = file(&format!(
            "[notifications]\nurl = \"{url}\"\nsecret = \"{secret}\"\n"
        ));
        parse_file(f.path()).map(|_| ()).map_err(|e| e.to_string())
    };
    for ok in [
        "https://hooks.example.com/softphone?token=x",
        "https://hooks.example.com:8443/a",
        "https://127.0.0.1:8443/local-relay",
        "https://[::1]:9000/",
    ] {
        assert_eq!(parse(ok, "k"), Ok(()), "{ok}");
    }
    for (bad, why) in [
        ("http://hooks.example.com/", "not an https"),
        ("http://127.0.0.1:8080/", "not an https"),
        (
            "https://user:pw@hooks.example.com/",
            "user name or password",
        ),
        ("ftp://hooks.example.com/", "not an https"),
        ("hooks.example.com", "not an https"),
        ("https:///path", "names no host"),
        ("https://hooks.example.com/a b", "spaces"),
    ] {
        let err = parse(bad, "k").expect_err(bad);
        assert!(
            err.contains("notifications.url") && err.contains(why),
            "{bad}: {err}"
        );
    }
    let err = parse("https://hooks.example.com/", "").expect_err("no secret");
    assert!(err.contains("notifications.secret"), "{err}");
}

#[test]
fn auto_answer_takes_a_mode_or_an_older_flag_and_statuses_say_what_they_accept() {
    let account = "[account]\nserver = \"pbx\"\nusername = \"1\"\npassword = \"p\"\n";
    for (value, expected) in [
        ("\"never\"", AutoAnswer::Never),
        ("\"bridged\"", AutoAnswer::Bridged),
        ("\"always\"", AutoAnswer::Always),
        ("true", AutoAnswer::Always),
        ("false", AutoAnswer::Never),
    ] {
        let f = file(&format!("{account}auto_answer = {value}\n"));
        let (config, _) = parse_file(f.path()).expect("parses");
        assert_eq!(
            config.account.map(|a| a.auto_answer),
            Some(expected),
            "{value}"
        );
    }
    let f = file(&format!("{account}auto_answer = \"sometimes\"\n"));
    let err = parse_file(f.path()).expect_err("bad mode").to_string();
    assert!(
        err.contains("auto_answer") && err.contains("bridged"),
        "{err}"
    );

    let f = file(
        "[[presence.status]]\nsoftphoneId = \"ready\"\nname = \"Ready\"\n\
         [[presence.status]]\nsoftphoneId = \"dnd\"\nname = \"DND\"\naccept_calls = false\nready = false\n",
    );
    let statuses = parse_file(f.path()).expect("parses").0.statuses();
    assert!(
        statuses[0].accept_calls && statuses[0].ready,
        "default: both"
    );
    assert!(!statuses[1].accept_calls && !statuses[1].ready);
}

#[test]
fn dialling_headers_and_patterns_are_checked() {
    for (text, says) in [
        ("[dialling]\ncampaign_header = \"Via\"\n", "writes itself"),
        (
            "[dialling]\ncaller_id_header = \"X-Campaign\"\n",
            "same header",
        ),
        (
            "[dialling]\ncampaign_header = \"X Campaign\"\n",
            "not a SIP header name",
        ),
        ("[dialling]\ncaller_ids = [\"abc*\"]\n", "caller_ids[0]"),
        (
            "[[dialling.partner]]\npartner_id = \"p\"\npatterns = []\n",
            "partner[0].patterns",
        ),
        ("[dialling]\npatterns = [\"\"]\n", "patterns[0]"),
    ] {
        let f = file(text);
        let err = parse_file(f.path()).expect_err(text).to_string();
        assert!(err.contains(says), "{text} → {err}");
    }
}

#[test]
fn it_locks_keys_the_agents_file_and_flags_cannot_change() {
    let it = file(
        "[api]\nallowed_origins = [\"https://crm.example.com\"]\nport = 48443\n\
         [provisioning]\nallowed = false\n\
         [lock]\nkeys = [\"api.allowed_origins\", \"provisioning.*\"]\n",
    );
    let agent = file(
        "[api]\nallowed_origins = [\"https://evil.example\"]\nport = 48500\n\
         [provisioning]\nallowed = true\n[lock]\nkeys = []\n",
    );
    let mut s = sources(&[&it, &agent]);
    s.overrides =
        toml::from_str("[api]\nallowed_origins = [\"https://flag.example\"]\n").expect("flags");
    let loaded = load_layers(&s).expect("loads");
    assert_eq!(
        loaded.config.api.allowed_origins,
        ["https://crm.example.com"],
        "IT's value stays"
    );
    assert_eq!(loaded.config.provisioning.allowed, Some(false));
    assert_eq!(
        loaded.config.api.port,
        Ports::single(48500),
        "what IT did not lock, the agent sets"
    );
    let it_name = it.path().display().to_string();
    let agent_name = agent.path().display().to_string();
    assert_eq!(loaded.origins["api.allowed_origins"], it_name);
    assert_eq!(loaded.origins["api.port"], agent_name);
    let warnings = loaded.warnings.join("\n");
    for expected in [
        format!("{agent_name}: `api.allowed_origins` is locked"),
        format!("{agent_name}: `provisioning.allowed` is locked"),
        "command-line flags: `api.allowed_origins` is locked".to_owned(),
        format!("{agent_name}: [lock] is only read from IT's machine-wide file"),
    ] {
        assert!(warnings.contains(&expected), "{expected}\n{warnings}");
    }
    assert!(is_locked(&["provisioning".into()], "provisioning.ca_file"));
    assert!(!is_locked(&["api.port".into()], "api.port_range"));
}

#[test]
fn a_clash_between_layers_names_the_file_that_set_the_key() {
    let it = file(
        "[[presence.status]]\nsoftphoneId = \"ready\"\nname = \"Ready\"\n\
         [[presence.status]]\nsoftphoneId = \"away\"\nname = \"Away\"\n",
    );
    let agent = file("[presence]\ninitial = \"available\"\n");
    let err = load(&sources(&[&it, &agent]))
        .expect_err("no such status")
        .to_string();
    assert!(
        err.contains(&agent.path().display().to_string()) && err.contains("presence.initial"),
        "{err}"
    );
}
