//! Configuration loading: defaults, every setting, and the errors that name their place.

use super::*;

fn write_certs(dir: &Path) {
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    for f in ["server.pem", "server.key", "ca.pem"] {
        std::fs::write(dir.join("certs").join(f), "x").unwrap();
    }
    let ca = crate::pki::Ca::generate("Test CA").unwrap();
    std::fs::write(
        dir.join("certs/crl.pem"),
        crate::tls::revocation::empty_crl(&ca).unwrap(),
    )
    .unwrap();
}

fn sample() -> String {
    render_example(&ExampleValues {
        hostname: "mx.mes.test",
        operator: "Op",
        domain: "a.mes.test",
        patient_domain: "patient.mes.test",
        operator2_dn: "CN=b",
        own_dn: "CN=a",
    })
}

#[test]
fn example_parses_and_resolves_paths() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let cfg = Config::parse(&path, &sample()).unwrap();
    assert_eq!(cfg.listen.mx, Some("127.0.0.1:2525".parse().unwrap()));
    assert!(cfg.listen.https.is_some());
    assert!(cfg.database_url.starts_with("sqlite://"));
    assert!(cfg.tls.certificate.is_absolute());
    assert_eq!(cfg.trust.whitelist.len(), 3);
}

#[test]
fn whitelist_dns_are_checked_and_escapes_survive_toml() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let text = sample().replace("operator_dn = \"CN=b\"", "operator_dn = \"mx.b\"");
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(
        err.contains("trust.whitelist") && err.contains("mx.b"),
        "{err}"
    );
    let text = render_example(&ExampleValues {
        hostname: "mx.mes.test",
        operator: "Op",
        domain: "a.mes.test",
        patient_domain: "patient.mes.test",
        operator2_dn: r#"CN=b, O=Dupont\, "Durand""#,
        own_dn: "CN=a",
    });
    let cfg = Config::parse(&path, &text).unwrap();
    assert!(
        cfg.trust
            .whitelist
            .iter()
            .any(|w| w.operator_dn == r#"CN=b, O=Dupont\, "Durand""#)
    );
}

#[test]
fn unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let text = sample().replace("[smtp]\n", "[smtp]\nmax_size = 3\n");
    let err = Config::parse(&dir.path().join("mes.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_size"), "{err}");
    let line = text.lines().position(|l| l == "max_size = 3").unwrap() + 1;
    assert!(err.contains(&format!("line {line}, column 1")), "{err}");
    let err = Config::parse(&dir.path().join("mes.toml"), "hostname = \"a\"\nx = [")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2, column"), "{err}");
}

#[test]
fn bad_port_is_named_with_line() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let text = sample().replace("127.0.0.1:2587", "127.0.0.1:99999");
    let err = Config::parse(&dir.path().join("mes.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen.submission"), "{err}");
    let line = text.lines().position(|l| l.contains("99999")).unwrap() + 1;
    let column = text
        .lines()
        .nth(line - 1)
        .unwrap()
        .find("submission")
        .unwrap()
        + 1;
    assert!(err.contains(&format!(":{line}:{column}: ")), "{err}");
}

#[test]
fn errors_point_at_the_item_or_the_key() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let at = |text: &str, needle: &str| {
        let line = text.lines().position(|l| l.contains(needle)).unwrap();
        let column = text.lines().nth(line).unwrap().find(needle).unwrap();
        format!(":{}:{}: ", line + 1, column + 1)
    };
    // An item of an inline array: its own line, at the bad field.
    let text = sample().replace("operator_dn = \"CN=b\"", "operator_dn = \"mx.b\"");
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(err.contains(&at(&text, "operator_dn = \"mx.b\"")), "{err}");
    // A key of an inline table, with non-ASCII text before it.
    let text = sample().replace(
        "# routes = {",
        "routes = { \"é.test\" = \"h:1\", \"b.test\" = \"nope\" }\n# x = {",
    );
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(err.contains("relay.routes"), "{err}");
    let line = text
        .lines()
        .position(|l| l.starts_with("routes = "))
        .unwrap()
        + 1;
    let column = "routes = { \"é.test\" = \"h:1\", ".chars().count() + 1;
    assert!(err.contains(&format!(":{line}:{column}: ")), "{err}");
}

#[test]
fn imap_command_line_limit() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    assert_eq!(
        Config::parse(&path, &sample())
            .unwrap()
            .imap
            .max_command_line,
        65536
    );
    let text = sample().replace("# max_command_line = 65536", "max_command_line = 100000 #");
    assert_eq!(
        Config::parse(&path, &text).unwrap().imap.max_command_line,
        100000
    );
    let text = sample().replace("# max_command_line = 65536", "max_command_line = 100 #");
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(err.contains("imap.max_command_line"), "{err}");
}

#[test]
fn revocation_lists_are_checked_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let cfg = Config::parse(&path, &sample()).unwrap();
    assert_eq!(cfg.tls.crl_files, vec![dir.path().join("certs/crl.pem")]);
    assert_eq!(cfg.tls.crl_reload_secs, 300);
    std::fs::write(dir.path().join("certs/crl.pem"), "not a list").unwrap();
    let err = Config::parse(&path, &sample()).unwrap_err().to_string();
    let line = sample()
        .lines()
        .position(|l| l.starts_with("crl_files"))
        .unwrap()
        + 1;
    assert!(err.contains("tls.crl_files"), "{err}");
    assert!(err.contains(&format!(":{line}:")), "{err}");
    assert!(err.contains("crl.pem"), "{err}");
    let text = sample()
        .replace("crl_files = [\"certs/crl.pem\"]", "crl_files = []")
        .replace("# crl_reload_secs = 300", "crl_reload_secs = 0");
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(err.contains("tls.crl_reload_secs"), "{err}");
}

#[test]
fn missing_certificate_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    std::fs::remove_file(dir.path().join("certs/server.key")).unwrap();
    let err = Config::parse(&dir.path().join("mes.toml"), &sample())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls.private_key"), "{err}");
    assert!(err.contains("server.key"), "{err}");
}

#[test]
fn quota_defaults_amounts_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    // No limit unless the file sets one.
    assert_eq!(
        Config::parse(&path, &sample()).unwrap().quota,
        QuotaSettings::default()
    );
    let text = sample()
        .replace("# storage = \"none\"", "storage = \"2G\" #")
        .replace("# messages = \"none\"", "messages = 1000 #");
    let quota = Config::parse(&path, &text).unwrap().quota;
    assert_eq!(quota.storage_kib, Some(2 * 1024 * 1024));
    assert_eq!(quota.messages, Some(1000));
    let text = sample().replace("# storage = \"none\"", "storage = 5000 #");
    assert_eq!(
        Config::parse(&path, &text).unwrap().quota.storage_kib,
        Some(5)
    );
    let text = sample().replace("# storage = \"none\"", "storage = \"2 bananas\" #");
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(
        err.contains("quota.storage") && err.contains("2 bananas"),
        "{err}"
    );
    let line = text
        .lines()
        .position(|l| l.starts_with("storage = \"2 bananas\""))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("mes.toml:{line}:")), "{err}");
    let text = sample().replace("# messages = \"none\"", "messages = \"lots\" #");
    let err = Config::parse(&path, &text).unwrap_err().to_string();
    assert!(err.contains("quota.messages"), "{err}");
}

#[test]
fn archive_years_default_and_bounds() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let cfg = Config::parse(&path, &sample()).unwrap();
    assert_eq!(cfg.lifecycle.archive_years, 10);
    let set =
        |v: &str| sample().replace("# archive_years = 10 ", &format!("archive_years = {v} #"));
    assert_eq!(
        Config::parse(&path, &set("20"))
            .unwrap()
            .lifecycle
            .archive_years,
        20
    );
    for bad in ["0", "101"] {
        let err = Config::parse(&path, &set(bad)).unwrap_err().to_string();
        assert!(err.contains("lifecycle.archive_years"), "{err}");
    }
}

#[test]
fn web_url_is_a_bare_https_origin() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let cfg = Config::parse(&path, &sample()).unwrap();
    assert_eq!(cfg.clients.web_url, None);
    assert_eq!(cfg.patients.service_notifications_per_day, 10);
    let set = |v: &str| {
        sample().replace(
            "# web_url = \"https://mx.mes.test\"",
            &format!("web_url = \"{v}\""),
        )
    };
    for good in ["https://mes.example.fr", "https://localhost:8443"] {
        let cfg = Config::parse(&path, &set(good)).unwrap();
        assert_eq!(cfg.clients.web_url.as_deref(), Some(good));
    }
    for bad in [
        "http://mes.example.fr",
        "https://mes.example.fr/",
        "https://mes.example.fr/oauth",
        "https://Mes.Example.fr",
        "https://mes.example.fr:0",
        "https://",
    ] {
        let err = Config::parse(&path, &set(bad)).unwrap_err().to_string();
        assert!(err.contains("clients.web_url"), "{bad}: {err}");
    }
}

#[test]
fn proxy_protocol_names_listeners_and_needs_balancers() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let path = dir.path().join("mes.toml");
    let with = |keys: &str| sample().replace("[listen]\n", &format!("[listen]\n{keys}\n"));
    let ok = Config::parse(
        &path,
        &with("proxy_protocol = [\"mx\", \"imaps\"]\nproxy_from = [\"10.0.0.2\", \"fd00::2\"]"),
    )
    .unwrap();
    assert_eq!(ok.listen.proxy_for("mx").unwrap().len(), 2);
    assert!(ok.listen.proxy_for("submissions").is_none());
    for (keys, key, says) in [
        (
            "proxy_protocol = [\"pop3\"]\nproxy_from = [\"10.0.0.2\"]",
            "listen.proxy_protocol",
            "pop3",
        ),
        (
            "proxy_protocol = [\"mx\"]",
            "listen.proxy_from",
            "load balancers",
        ),
        (
            "proxy_protocol = [\"mx\"]\nproxy_from = [\"lb.example\"]",
            "listen.proxy_from",
            "lb.example",
        ),
    ] {
        let err = Config::parse(&path, &with(keys)).unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(says), "{keys}: {err}");
    }
}

#[test]
fn whitelist_signing_cert_is_taken_from_the_configuration_folder() {
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let text = sample().replace(
        "[trust]\n",
        "[trust]\nwhitelist_signing_cert = \"certs/signer.pem\"\n",
    );
    let config = Config::parse(&dir.path().join("mes.toml"), &text).unwrap();
    assert_eq!(
        config.trust.whitelist_signing_cert,
        Some(dir.path().join("certs/signer.pem"))
    );
    assert_eq!(config.trust.whitelist_signature_url, None);
}
