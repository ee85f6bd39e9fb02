//! Referenced services (issue 22): `mes service`, the OAuth 2.1 flow with
//! the consent screen in headless Chromium, the token endpoint (PKCE,
//! rotation, reuse detection, revocation, client authentication), the FHIR
//! data API behind the access gate, the access history, and the pages with
//! axe at 1280 and 360 px. Real server, real TLS, both backends.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::process::Command;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use browser::{Browser, Viewport};
use common::{Db, Instance, Server, open_store};
use serde_json::Value;
use sha2::Digest;

const A_INS: &str = "279035121518989";
const A: &str = "279035121518989@patient.mes.test";
const B: &str = "184127645108946@patient.mes.test";
const PW: &str = "jardin des plantes 7";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K27uhbUJU1p1r_wW1gFWFOEjXk-verifier-of-test";
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n";
/// The smallest PNG signature and header (the catalogue checks the type by content).
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xff\xff?\0\x05\xfe\x02\xfe\xa7\x35\x81\x84\0\0\0\0IEND\xaeB`\x82";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn base(server: &Server) -> String {
    format!("https://localhost:{}", server.addr("https").port())
}

/// One HTTP answer.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
    fn location(&self) -> Option<String> {
        self.headers
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .map(|l| l.trim().to_string())
    }
}

/// curl over the dev CA: `args` are extra curl arguments.
fn curl(instance: &Instance, url: &str, args: &[&str]) -> Reply {
    let headers = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "--cacert", instance.cert("ca.pem").to_str().unwrap()])
        .args([
            "-D",
            headers.path().to_str().unwrap(),
            "-w",
            "\n%{http_code}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    Reply {
        status: code
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text}")),
        headers: std::fs::read_to_string(headers.path())
            .unwrap()
            .to_ascii_lowercase(),
        body: body.to_string(),
    }
}

fn post(instance: &Instance, url: &str, form: &[(&str, &str)], extra: &[&str]) -> Reply {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    for (k, v) in form {
        args.push("--data-urlencode".into());
        args.push(format!("{k}={v}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    curl(instance, url, &refs)
}

fn api(instance: &Instance, url: &str, token: &str) -> Reply {
    curl(
        instance,
        url,
        &["-H", &format!("Authorization: Bearer {token}")],
    )
}

fn authorize_url(url: &str, client: &str, redirect: &str, scope: &str, state: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "{url}/oauth/authorize?response_type=code&client_id={client}&redirect_uri={}&scope={}&state={state}&code_challenge={}&code_challenge_method=S256",
        enc(redirect),
        enc(scope),
        challenge(VERIFIER)
    )
}

/// The query parameter `name` of a URL or path.
fn param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.replace("%2D", "-").replace("%5F", "_"))
    })
}

/// In the logged-in browser: the consent screen for `client`, approved;
/// returns the code handed to the redirect URI.
async fn approve(b: &Browser, url: &str, client: &str, redirect: &str, scope: &str) -> String {
    b.goto(&authorize_url(url, client, redirect, scope, "etat-42"))
        .await;
    let text = b.main_text().await;
    assert!(text.contains("demande à accéder"), "{text}");
    b.navigate_by("button[value=autoriser]").await;
    let landed = b.path().await;
    assert!(landed.starts_with("/retour-service?"), "{landed}");
    assert_eq!(param(&landed, "state").as_deref(), Some("etat-42"));
    param(&landed, "code").expect("a code")
}

fn exchange(
    instance: &Instance,
    url: &str,
    client: &str,
    redirect: &str,
    code: &str,
    verifier: &str,
    extra: &[&str],
) -> Reply {
    post(
        instance,
        &format!("{url}/oauth/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", client),
        ],
        extra,
    )
}

fn refresh(
    instance: &Instance,
    url: &str,
    client: &str,
    token: &str,
    scope: Option<&str>,
) -> Reply {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client),
    ];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    post(instance, &format!("{url}/oauth/token"), &form, &[])
}

fn add_service(
    instance: &Instance,
    id: &str,
    name: &str,
    redirect: &str,
    scopes: &str,
    extra: &[&str],
) -> String {
    let home = redirect.replace("/retour-service", "/accueil-service");
    let mut args = vec![
        "service",
        "add",
        id,
        "--name",
        name,
        "--publisher",
        "Éditeur Santé SAS",
        "--category",
        "Suivi de maladie chronique",
        "--description",
        "Suivez votre tension et partagez vos mesures avec votre médecin.",
        "--home-url",
        &home,
        "--redirect-uri",
        redirect,
        "--scopes",
        scopes,
    ];
    args.extend_from_slice(extra);
    instance.run(&args, None)
}

/// A P-256 key as a JWKS (public) and a PEM (private).
fn ec_key() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let raw = key.public_key_raw();
    assert_eq!(raw.len(), 65);
    let jwks = serde_json::json!({ "keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&raw[33..65]),
    }]});
    (jwks.to_string(), key.serialize_pem())
}

fn assertion(pem: &str, client: &str, aud: &str, jti: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims = serde_json::json!({
        "iss": client, "sub": client, "aud": aud, "exp": now + 60, "iat": now, "jti": jti,
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn setup(db: Db) -> (Instance, Server, String, String) {
    setup_with(db, |c| c).await
}

/// [`setup`] with the configuration edited by `edit` before the start.
async fn setup_with(
    db: Db,
    edit: impl FnOnce(String) -> String,
) -> (Instance, Server, String, String) {
    let instance = Instance::new(db).await;
    instance.edit_config(edit);
    instance.add_named_user(A, "patient", "Marie Martin", PW);
    instance.add_named_user(B, "patient", "Paul Durand", PW);
    let server = instance.start();
    let url = base(&server);
    let redirect = format!("{url}/retour-service");
    let store = open_store(&instance).await;
    let a = store.account_by_address(A).await.unwrap().unwrap();
    let b = store.account_by_address(B).await.unwrap().unwrap();
    for (p, title) in [
        (&a, "Compte rendu de consultation"),
        (&b, "Résultats de Paul"),
    ] {
        store
            .add_document(
                p.id,
                mes::store::dossier::NewDocument {
                    unique_id: format!("test.{}", p.id),
                    category: "SYNTHESE".into(),
                    title: title.into(),
                    mime_type: "application/pdf".into(),
                    data: PDF.to_vec(),
                    source: "patient",
                    ..Default::default()
                },
            )
            .await
            .unwrap();
    }
    store
        .declare_profile_item(
            a.id,
            &mes::store::dossier::NewProfileItem {
                category: "allergies".into(),
                label: "Pénicilline".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // An appointment, as the agenda's filing would store it (2026-12-10 09:00 UTC).
    sqlx::query(
        "INSERT INTO appointments (patient_id, organizer, organizer_name, uid, sequence, dtstamp, \
         status, title, starts_at, ends_at, ics, created_at, updated_at) \
         VALUES ($1, 'jean.dupont@hopital-a.mes.test', 'Dr Jean Dupont', 'rdv-1', 0, 0, \
         'CONFIRMED', 'Consultation de suivi', 1796893200, 1796895000, '', 0, 0)",
    )
    .bind(a.id)
    .execute(store.pool())
    .await
    .unwrap();
    (instance, server, url, redirect)
}

async fn logged_in(instance: &Instance, url: &str, viewport: Viewport) -> Browser {
    let b = Browser::start(&instance.cert("ca.pem"), viewport).await;
    b.goto(&format!("{url}/connexion")).await;
    b.fill("#login", A_INS).await;
    b.fill("#password", PW).await;
    b.navigate_by("main button[type=submit]").await;
    b
}

async fn oauth_flow(db: Db) {
    let (instance, _server, url, redirect) = setup(db).await;
    let out = add_service(
        &instance,
        "suivi-tension",
        "Suivi Tension",
        &redirect,
        "documents.read profile.read agenda.read",
        &[],
    );
    assert!(out.contains("referenced"), "{out}");
    let list = instance.run(&["service", "list"], None);
    assert!(list.contains("suivi-tension\treferenced"), "{list}");
    let show = instance.run(&["service", "show", "suivi-tension"], None);
    assert!(show.contains("client: public"), "{show}");

    // Metadata (RFC 8414).
    let meta = curl(
        &instance,
        &format!("{url}/.well-known/oauth-authorization-server"),
        &[],
    )
    .json();
    assert_eq!(meta["issuer"], url.as_str());
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );

    // A wrong redirect URI: an error page, never a redirect.
    let r = curl(
        &instance,
        &authorize_url(
            &url,
            "suivi-tension",
            "https://evil.example/cb",
            "documents.read",
            "s",
        ),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.location().is_none());
    assert!(r.body.contains("pas valable"), "{}", r.body);
    // Without PKCE: back to the service with invalid_request and the state.
    let no_pkce = format!(
        "{url}/oauth/authorize?response_type=code&client_id=suivi-tension&redirect_uri={}&state=s1",
        redirect.replace(':', "%3A").replace('/', "%2F")
    );
    let r = curl(&instance, &no_pkce, &[]);
    let to = r.location().unwrap_or_default();
    assert!(
        to.starts_with(&redirect)
            && to.contains("error=invalid_request")
            && to.contains("state=s1"),
        "{to}"
    );
    // Scopes the service does not request: invalid_scope.
    let r = curl(
        &instance,
        &authorize_url(&url, "suivi-tension", &redirect, "documents.write", "s"),
        &[],
    );
    assert!(
        r.location()
            .unwrap_or_default()
            .contains("error=invalid_scope")
    );

    // The patient logs in through the flow and approves.
    let b = Browser::start(&instance.cert("ca.pem"), Viewport::Desktop).await;
    b.goto(&authorize_url(
        &url,
        "suivi-tension",
        &redirect,
        "documents.read profile.read agenda.read",
        "etat-42",
    ))
    .await;
    assert!(b.path().await.starts_with("/connexion?retour="));
    b.fill("#login", A_INS).await;
    b.fill("#password", PW).await;
    b.navigate_by("main button[type=submit]").await;
    let text = b.main_text().await;
    assert!(
        text.contains("Lire les documents de votre dossier médical"),
        "{text}"
    );
    b.navigate_by("button[value=autoriser]").await;
    let landed = b.path().await;
    let code = param(&landed, "code").expect("code");

    // Wrong PKCE verifier: refused, and the code is spent.
    let r = exchange(
        &instance,
        &url,
        "suivi-tension",
        &redirect,
        &code,
        &format!("{VERIFIER}x"),
        &[],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant");
    let r = exchange(
        &instance,
        &url,
        "suivi-tension",
        &redirect,
        &code,
        VERIFIER,
        &[],
    );
    assert_eq!(r.status, 400, "a code is used once: {}", r.body);
    // Missing verifier.
    let code = approve(
        &b,
        &url,
        "suivi-tension",
        &redirect,
        "documents.read profile.read agenda.read",
    )
    .await;
    let r = exchange(&instance, &url, "suivi-tension", &redirect, &code, "", &[]);
    assert_eq!(r.status, 400, "{}", r.body);

    // The right exchange.
    let code = approve(
        &b,
        &url,
        "suivi-tension",
        &redirect,
        "documents.read profile.read agenda.read",
    )
    .await;
    let r = exchange(
        &instance,
        &url,
        "suivi-tension",
        &redirect,
        &code,
        VERIFIER,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh1 = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(t["scope"], "documents.read profile.read agenda.read");

    // The data API.
    let fhir = format!("{url}/fhir/r4");
    let docs = api(&instance, &format!("{fhir}/DocumentReference"), &access);
    assert_eq!(docs.status, 200, "{}", docs.body);
    let docs = docs.json();
    assert_eq!(docs["total"], 1);
    let doc = &docs["entry"][0]["resource"];
    assert_eq!(doc["description"], "Compte rendu de consultation");
    assert_eq!(doc["subject"]["identifier"]["value"], A_INS);
    let id = doc["id"].as_str().unwrap().to_string();
    let one = api(
        &instance,
        &format!("{fhir}/DocumentReference/{id}"),
        &access,
    );
    assert_eq!(one.json()["resourceType"], "DocumentReference");
    let bin = api(&instance, &format!("{fhir}/Binary/{id}"), &access);
    assert_eq!(bin.status, 200);
    assert_eq!(bin.body.as_bytes(), PDF);
    let allergies = api(&instance, &format!("{fhir}/AllergyIntolerance"), &access).json();
    assert_eq!(
        allergies["entry"][0]["resource"]["code"]["text"],
        "Pénicilline"
    );
    let conditions = api(&instance, &format!("{fhir}/Condition"), &access).json();
    assert_eq!(conditions["total"], 0);
    let appointments = api(&instance, &format!("{fhir}/Appointment"), &access);
    assert_eq!(appointments.status, 200);
    let appointment = &appointments.json()["entry"][0]["resource"];
    assert_eq!(appointment["resourceType"], "Appointment");
    assert_eq!(appointment["description"], "Consultation de suivi");
    assert_eq!(appointment["start"], "2026-12-10T09:00:00Z");
    assert_eq!(appointment["status"], "booked");

    // Another patient's document: 404, and on that patient's trail.
    let store = open_store(&instance).await;
    let pb = store.account_by_address(B).await.unwrap().unwrap();
    let other = store.documents_of(pb.id).await.unwrap()[0].id;
    let r = api(
        &instance,
        &format!("{fhir}/DocumentReference/{other}"),
        &access,
    );
    assert_eq!(r.status, 404);
    let r = api(&instance, &format!("{fhir}/Binary/{other}"), &access);
    assert_eq!(r.status, 404);
    let refused: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE target = $1 AND actor = 'service:suivi-tension' \
         AND action = 'record.refused' AND detail LIKE '%SERVICE_TIERS%'",
    )
    .bind(B)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(refused, 2);

    // Refresh beyond the grant: refused (and the token not spent); then
    // with rotation, narrowed to documents.read.
    let r = refresh(
        &instance,
        &url,
        "suivi-tension",
        &refresh1,
        Some("documents.read documents.write"),
    );
    assert_eq!(r.status, 400, "scope escalation: {}", r.body);
    assert_eq!(r.json()["error"], "invalid_scope");
    let r = refresh(
        &instance,
        &url,
        "suivi-tension",
        &refresh1,
        Some("documents.read"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let t2 = r.json();
    let access2 = t2["access_token"].as_str().unwrap().to_string();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(t2["scope"], "documents.read");
    assert_eq!(
        api(&instance, &format!("{fhir}/DocumentReference"), &access2).status,
        200
    );
    assert_eq!(
        api(&instance, &format!("{fhir}/AllergyIntolerance"), &access2).status,
        403,
        "a scope the token does not carry"
    );
    // Reusing the old refresh token revokes the whole family.
    let r = refresh(&instance, &url, "suivi-tension", &refresh1, None);
    assert_eq!(r.status, 400);
    assert_eq!(
        api(&instance, &format!("{fhir}/DocumentReference"), &access2).status,
        401
    );
    assert_eq!(
        refresh(&instance, &url, "suivi-tension", &refresh2, None).status,
        400
    );

    // Revocation (RFC 7009).
    let code = approve(&b, &url, "suivi-tension", &redirect, "documents.read").await;
    let t = exchange(
        &instance,
        &url,
        "suivi-tension",
        &redirect,
        &code,
        VERIFIER,
        &[],
    )
    .json();
    let access3 = t["access_token"].as_str().unwrap().to_string();
    let refresh3 = t["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(
        api(&instance, &format!("{fhir}/DocumentReference"), &access3).status,
        200
    );
    let r = post(
        &instance,
        &format!("{url}/oauth/revoke"),
        &[("token", &access3), ("client_id", "suivi-tension")],
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        api(&instance, &format!("{fhir}/DocumentReference"), &access3).status,
        401
    );
    assert_eq!(
        refresh(&instance, &url, "suivi-tension", &refresh3, None).status,
        400
    );

    // The access history names the service.
    b.goto(&format!("{url}/historique")).await;
    let text = b.main_text().await;
    assert!(text.contains("Suivi Tension"), "{text}");
    assert!(text.contains("Accès par un service connecté"), "{text}");

    // A confidential client with a secret (client_secret_basic / _post).
    let out = add_service(
        &instance,
        "coach",
        "Coach Santé",
        &redirect,
        "documents.read",
        &["--confidential"],
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client secret: "))
        .and_then(|l| l.split_whitespace().next())
        .expect("a secret")
        .to_string();
    let code = approve(&b, &url, "coach", &redirect, "documents.read").await;
    let r = exchange(&instance, &url, "coach", &redirect, &code, VERIFIER, &[]);
    assert_eq!(r.status, 401, "no secret: {}", r.body);
    let code = approve(&b, &url, "coach", &redirect, "documents.read").await;
    let r = exchange(
        &instance,
        &url,
        "coach",
        &redirect,
        &code,
        VERIFIER,
        &["-u", &format!("coach:{secret}")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let coach_access = r.json()["access_token"].as_str().unwrap().to_string();
    let code = approve(&b, &url, "coach", &redirect, "documents.read").await;
    let r = exchange(
        &instance,
        &url,
        "coach",
        &redirect,
        &code,
        VERIFIER,
        &["-u", "coach:wrong-secret-value"],
    );
    assert_eq!(r.status, 401);

    // private_key_jwt: a signed assertion, once.
    let (jwks, pem) = ec_key();
    let jwks_file = instance.root().join("jwks.json");
    std::fs::write(&jwks_file, jwks).unwrap();
    add_service(
        &instance,
        "jwt-app",
        "Appli Signée",
        &redirect,
        "documents.read",
        &["--jwks", jwks_file.to_str().unwrap()],
    );
    let jwt = assertion(&pem, "jwt-app", &format!("{url}/oauth/token"), "jti-1");
    let bearer = [
        "client_assertion_type",
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    ];
    let code = approve(&b, &url, "jwt-app", &redirect, "documents.read").await;
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("code_verifier", VERIFIER),
        ("client_id", "jwt-app"),
        (bearer[0], bearer[1]),
        ("client_assertion", jwt.as_str()),
    ];
    let r = post(&instance, &format!("{url}/oauth/token"), &form, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let code = approve(&b, &url, "jwt-app", &redirect, "documents.read").await;
    form[1] = ("code", code.as_str());
    let r = post(&instance, &format!("{url}/oauth/token"), &form, &[]);
    assert_eq!(r.status, 401, "a replayed assertion: {}", r.body);
    let other = assertion(&pem, "jwt-app", "https://elsewhere.example/token", "jti-2");
    form[6] = ("client_assertion", other.as_str());
    let r = post(&instance, &format!("{url}/oauth/token"), &form, &[]);
    assert_eq!(r.status, 401, "another audience: {}", r.body);

    // "Déconnecter" revokes every token of the service.
    b.goto(&format!("{url}/services/connectes")).await;
    let text = b.main_text().await;
    assert!(
        text.contains("Coach Santé") && text.contains("Suivi Tension"),
        "{text}"
    );
    b.navigate_by("form[action='/services/coach/deconnecter'] button")
        .await;
    assert!(b.main_text().await.contains("Le service est déconnecté"));
    assert_eq!(
        api(
            &instance,
            &format!("{fhir}/DocumentReference"),
            &coach_access
        )
        .status,
        401
    );

    // A suspended service: no consent screen, no token, no API call.
    let code = approve(&b, &url, "suivi-tension", &redirect, "documents.read").await;
    let t = exchange(
        &instance,
        &url,
        "suivi-tension",
        &redirect,
        &code,
        VERIFIER,
        &[],
    )
    .json();
    let live = t["access_token"].as_str().unwrap().to_string();
    let live_refresh = t["refresh_token"].as_str().unwrap().to_string();
    instance.run(&["service", "suspend", "suivi-tension"], None);
    assert_eq!(
        api(&instance, &format!("{fhir}/DocumentReference"), &live).status,
        401
    );
    let r = refresh(&instance, &url, "suivi-tension", &live_refresh, None);
    assert_eq!(r.json()["error"], "unauthorized_client");
    b.goto(&authorize_url(
        &url,
        "suivi-tension",
        &redirect,
        "documents.read",
        "s",
    ))
    .await;
    assert!(b.main_text().await.contains("suspendu"));
    instance.run(&["service", "resume", "suivi-tension"], None);
    assert_eq!(
        api(&instance, &format!("{fhir}/DocumentReference"), &live).status,
        200
    );

    // Scopes changed by the operator: the consent screen says so.
    instance.run(
        &[
            "service",
            "scopes",
            "suivi-tension",
            "documents.read documents.write",
        ],
        None,
    );
    b.goto(&authorize_url(
        &url,
        "suivi-tension",
        &redirect,
        "documents.read documents.write",
        "s",
    ))
    .await;
    let text = b.main_text().await;
    assert!(
        text.contains("nouvelles autorisations") && text.contains("Ajouter des documents"),
        "{text}"
    );
    b.navigate_by("button[value=autoriser]").await;
    let code = param(&b.path().await, "code").expect("code");
    let t = exchange(
        &instance,
        &url,
        "suivi-tension",
        &redirect,
        &code,
        VERIFIER,
        &[],
    )
    .json();
    assert_eq!(t["scope"], "documents.read documents.write");
    let writer = t["access_token"].as_str().unwrap().to_string();

    // documents.write: a PDF, and an IHE XDM package through the deposit path.
    let post_doc = |token: &str, kind: &str, data: &[u8]| {
        let body = serde_json::json!({
            "resourceType": "DocumentReference",
            "category": [{ "text": "SYNTHESE" }],
            "description": "Relevé de tension",
            "content": [{ "attachment": {
                "contentType": kind,
                "data": base64::engine::general_purpose::STANDARD.encode(data),
                "title": "Relevé de tension",
            }}],
        });
        let file = instance.root().join("document-reference.json");
        std::fs::write(&file, body.to_string()).unwrap();
        curl(
            &instance,
            &format!("{fhir}/DocumentReference"),
            &[
                "-H",
                &format!("Authorization: Bearer {token}"),
                "-H",
                "Content-Type: application/fhir+json",
                "--data-binary",
                &format!("@{}", file.display()),
            ],
        )
    };
    assert_eq!(
        post_doc(&live, "application/pdf", PDF).status,
        403,
        "documents.read only"
    );
    let r = post_doc(&writer, "application/pdf", PDF);
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post_doc(
        &writer,
        "application/zip",
        &common::xdm_sample("LDL-SES_2022.01"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = post_doc(&writer, "text/html", b"<p>x</p>");
    assert_eq!(r.status, 422, "{}", r.body);
    let docs = api(&instance, &format!("{fhir}/DocumentReference"), &writer).json();
    let titles = docs.to_string();
    assert!(docs["total"].as_u64().unwrap() >= 3, "{titles}");
    assert!(titles.contains("Relevé de tension"), "{titles}");
    let by: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM documents WHERE deposited_by = 'service:suivi-tension'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(by >= 2, "the service is the depositor: {by}");

    // Removal.
    let out = instance.run(&["service", "remove", "jwt-app"], None);
    assert!(out.contains("removed"));
    assert!(!instance.run(&["service", "list"], None).contains("jwt-app"));
    let cfg = instance.config.to_str().unwrap();
    let (ok, _, err) = common::mes(&["--config", cfg, "service", "show", "jwt-app"], None);
    assert!(!ok && err.contains("no service"), "{err}");
    b.close().await;
}

both_backends!(oauth_flow);

async fn pages(viewport: Viewport) {
    let (instance, server, url, redirect) = setup(Db::Sqlite).await;
    let logo = instance.root().join("logo.png");
    std::fs::write(&logo, PNG).unwrap();
    add_service(
        &instance,
        "suivi-tension",
        "Suivi Tension",
        &redirect,
        "documents.read profile.read",
        &["--logo", logo.to_str().unwrap()],
    );
    let svg = instance.root().join("logo.svg");
    std::fs::write(&svg, "<svg xmlns='http://www.w3.org/2000/svg'/>").unwrap();
    let cfg = instance.config.to_str().unwrap();
    let (ok, _, err) = common::mes(
        &[
            "--config",
            cfg,
            "service",
            "add",
            "autre",
            "--name",
            "Autre",
            "--publisher",
            "X",
            "--category",
            "Y",
            "--description",
            "Z",
            "--home-url",
            "https://x.example",
            "--redirect-uri",
            "https://x.example/cb",
            "--scopes",
            "documents.read",
            "--logo",
            svg.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok && err.contains("PNG or JPEG"), "{err}");
    let b = logged_in(&instance, &url, viewport).await;
    let tag = viewport.label();
    for (path, name, expect) in [
        (
            "/services".to_string(),
            "catalogue",
            "Suivi de maladie chronique",
        ),
        (
            "/services?q=tension".to_string(),
            "catalogue-recherche",
            "Suivi Tension",
        ),
        (
            "/services/suivi-tension".to_string(),
            "service",
            "Lire votre profil médical",
        ),
        (
            authorize_url(&url, "suivi-tension", &redirect, "documents.read", "s")
                .replace(&url, ""),
            "consentement",
            "Autoriser Suivi Tension",
        ),
    ] {
        b.goto(&format!("{url}{path}")).await;
        let text = b.main_text().await;
        assert!(text.contains(expect), "{name}: {text}");
        let shot = format!("services-{name}-{tag}");
        b.screenshot(&shot).await;
        b.check_accessibility(&shot).await;
        b.check_no_horizontal_scroll(&shot).await;
    }
    b.goto(&format!("{url}/services?q=introuvable")).await;
    assert!(b.main_text().await.contains("Aucun service"));
    b.goto(&authorize_url(
        &url,
        "suivi-tension",
        &redirect,
        "documents.read",
        "s",
    ))
    .await;
    b.navigate_by("button[value=autoriser]").await;
    b.goto(&format!("{url}/services/connectes")).await;
    let text = b.main_text().await;
    assert!(
        text.contains("Suivi Tension") && text.contains("Dernier accès : jamais"),
        "{text}"
    );
    let shot = format!("services-connectes-{tag}");
    b.screenshot(&shot).await;
    b.check_accessibility(&shot).await;
    b.check_no_horizontal_scroll(&shot).await;
    // "Connecter" sends the patient to the service, told our issuer.
    let r = curl(
        &instance,
        &format!("{url}/services/suivi-tension/connecter"),
        &[],
    );
    assert_eq!(
        r.location().as_deref(),
        Some("/connexion"),
        "only for a logged-in patient"
    );
    b.goto(&format!("{url}/services/suivi-tension/connecter"))
        .await;
    let landed = b.path().await;
    assert!(landed.starts_with("/accueil-service?iss=https"), "{landed}");
    drop(server);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_desktop() {
    pages(Viewport::Desktop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_phone_360() {
    pages(Viewport::Phone).await;
}

/// The 90-day notice of connected services, on a store whose clock the test
/// moves: nothing before 90 days, one notice naming the service after, none
/// again until the next period; NOTIF_SYNCHRONIZED_SERVICE off: none.
async fn connected_services_notice(db: Db) {
    let (port, got) = common::smtp_sink().await;
    let (instance, _server, _url, redirect) = setup(db).await;
    add_service(
        &instance,
        "suivi-tension",
        "Suivi Tension",
        &redirect,
        "documents.read",
        &[],
    );
    let clock = std::sync::Arc::new(mes::clock::ManualClock::new(mes::clock::system_now()));
    let store = open_store(&instance).await.with_clock(clock.clone());
    let a = store.account_by_address(A).await.unwrap().unwrap();
    let b = store.account_by_address(B).await.unwrap().unwrap();
    for (p, email) in [(&a, "marie@example.test"), (&b, "paul@example.test")] {
        store
            .set_grant(p.id, "suivi-tension", "documents.read")
            .await
            .unwrap();
        store
            .set_patient_settings(p.id, Some(email), true)
            .await
            .unwrap();
    }
    store
        .set_services_notice_setting(b.id, false)
        .await
        .unwrap();
    let notifier = mes::threads::notify::Notifier::new(
        store.clone(),
        mes::config::NotifySettings {
            smarthost: Some(format!("127.0.0.1:{port}")),
            starttls: false,
            ..Default::default()
        },
        tokio_util::task::TaskTracker::new(),
    )
    .unwrap();
    let tick = || mes::services::notice::tick(&store, &notifier);
    assert_eq!(tick().await.unwrap(), 0, "not before 90 days");
    clock.advance(90 * 86_400 + 1);
    assert_eq!(tick().await.unwrap(), 1);
    assert_eq!(tick().await.unwrap(), 0, "once per period");
    let sent = got.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    let m = mail_parser::MessageParser::default()
        .parse(sent[0].as_bytes())
        .unwrap();
    assert_eq!(m.subject(), Some(mes::services::notice::SUBJECT));
    let to = m
        .to()
        .and_then(|t| t.first())
        .and_then(|a| a.address())
        .unwrap_or_default();
    assert_eq!(to, "marie@example.test");
    let text = m.body_text(0).unwrap_or_default();
    assert!(text.contains("- Suivi Tension"), "{text}");
    clock.advance(90 * 86_400 + 1);
    assert_eq!(tick().await.unwrap(), 1, "the next period");
}

both_backends!(connected_services_notice);

/// `method` of a JSON body to `url` with the bearer `token`.
fn send_json(instance: &Instance, method: &str, url: &str, token: &str, body: &str) -> Reply {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), body).unwrap();
    curl(
        instance,
        url,
        &[
            "-X",
            method,
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/fhir+json",
            "--data-binary",
            &format!("@{}", file.path().display()),
        ],
    )
}

/// In the logged-in browser: `client` approved for `scope`, the code
/// exchanged; returns (access token, refresh token).
async fn connect(
    instance: &Instance,
    b: &Browser,
    url: &str,
    client: &str,
    redirect: &str,
    scope: &str,
) -> (String, String) {
    let code = approve(b, url, client, redirect, scope).await;
    let r = exchange(instance, url, client, redirect, &code, VERIFIER, &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = r.json();
    (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    )
}

fn appointment(status: &str, start: &str, end: &str) -> String {
    serde_json::json!({
        "resourceType": "Appointment",
        "status": status,
        "start": start,
        "end": end,
        "serviceType": [{ "text": "Téléconsultation de suivi" }],
        "comment": "Préparez vos derniers relevés.",
        "participant": [
            { "actor": { "reference": "Location/cab-1", "display": "Cabinet Pasteur" }, "status": "accepted" },
            { "actor": { "reference": "Practitioner/p-1", "display": "Dr Claire Petit" }, "status": "accepted" },
        ],
    })
    .to_string()
}

fn communication(text: &str) -> String {
    serde_json::json!({
        "resourceType": "Communication",
        "status": "completed",
        "topic": { "text": "Votre relevé hebdomadaire" },
        "payload": [{ "contentString": text }],
    })
    .to_string()
}

/// `agenda.write`: a booking through the data API shows in the FHIR agenda
/// and the webmail's Agenda page (no answer asked); strict input; only the
/// service's own bookings are cancelled. `messages.notify`: a notification
/// reaches the INBOX and the webmail from the service's fixed address, the
/// daily limit answers 429; neither without its scope.
async fn agenda_write_and_notifications(db: Db) {
    let (port, notices) = common::smtp_sink().await;
    let (instance, _server, url, redirect) = setup_with(db, |c| {
        c.replace(
            "[patients]\n",
            "[patients]\nservice_notifications_per_day = 2\n",
        )
        .replacen(
            "[notify]\n",
            &format!("[notify]\nsmarthost = \"127.0.0.1:{port}\"\nstarttls = false\n"),
            1,
        )
    })
    .await;
    let all = "agenda.read agenda.write messages.notify";
    add_service(
        &instance,
        "suivi-tension",
        "Suivi Tension",
        &redirect,
        all,
        &[],
    );
    add_service(
        &instance,
        "autre-agenda",
        "Autre Agenda",
        &redirect,
        "agenda.write",
        &[],
    );
    let b = logged_in(&instance, &url, Viewport::Desktop).await;
    let (access, refresh_token) =
        connect(&instance, &b, &url, "suivi-tension", &redirect, all).await;
    let (other, _) = connect(
        &instance,
        &b,
        &url,
        "autre-agenda",
        &redirect,
        "agenda.write",
    )
    .await;
    let fhir = format!("{url}/fhir/r4");
    let appointments = format!("{fhir}/Appointment");

    // A booking: 201 with its id.
    let r = send_json(
        &instance,
        "POST",
        &appointments,
        &access,
        &appointment(
            "booked",
            "2027-01-10T09:00:00+01:00",
            "2027-01-10T09:30:00+01:00",
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    // (The helper lowercases headers.)
    assert_eq!(r.location(), Some(format!("appointment/{id}")));
    // Strict input, answered with an OperationOutcome.
    let huge =
        serde_json::json!({ "resourceType": "Appointment", "comment": "x".repeat(17 * 1024) });
    for (body, status, what) in [
        (
            appointment("arrived", "2027-01-10T09:00:00Z", "2027-01-10T09:30:00Z"),
            422,
            "status",
        ),
        (
            appointment("booked", "2027-01-10T09:00:00", "2027-01-10T09:30:00"),
            422,
            "times without a zone",
        ),
        (
            appointment("booked", "2027-01-10T10:00:00Z", "2027-01-10T09:00:00Z"),
            422,
            "end before start",
        ),
        (
            appointment("booked", "2031-01-10T09:00:00Z", "2031-01-10T09:30:00Z"),
            422,
            "too far",
        ),
        ("{".to_string(), 400, "not JSON"),
        (
            r#"{"resourceType":"Patient"}"#.to_string(),
            400,
            "another resource",
        ),
        (huge.to_string(), 413, "too large"),
    ] {
        let r = send_json(&instance, "POST", &appointments, &access, &body);
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(r.json()["resourceType"], "OperationOutcome", "{what}");
    }
    // In the FHIR agenda and on the Agenda page, without Accept/Decline.
    let listed = api(&instance, &appointments, &access).json();
    let entries = listed["entry"].as_array().unwrap().clone();
    let ours = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["id"] == id.as_str())
        .expect("the booking is listed");
    assert_eq!(ours["status"], "booked");
    assert_eq!(ours["description"], "Téléconsultation de suivi");
    assert_eq!(ours["start"], "2027-01-10T08:00:00Z");
    let doctors = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["description"] == "Consultation de suivi")
        .expect("the invitation's appointment")["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.goto(&format!("{url}/agenda")).await;
    let text = b.main_text().await;
    for expect in [
        "Téléconsultation de suivi",
        "Lieu : Cabinet Pasteur",
        "Avec Dr Claire Petit",
        "Organisé par Suivi Tension",
        "Ajouté par un service connecté",
    ] {
        assert!(text.contains(expect), "{expect}: {text}");
    }
    assert_eq!(
        b.count("form[action$='/repondre'] button").await,
        2,
        "only the invitation asks for an answer"
    );
    b.check_accessibility("services-agenda").await;

    // Cancelling: not the invitation of a professional, not another
    // service's booking, not with anything but the status.
    let cancel = r#"[{"op":"replace","path":"/status","value":"cancelled"}]"#;
    let r = send_json(
        &instance,
        "PATCH",
        &format!("{appointments}/{doctors}"),
        &access,
        cancel,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send_json(
        &instance,
        "PATCH",
        &format!("{appointments}/{id}"),
        &other,
        cancel,
    );
    assert_eq!(r.status, 403, "another service's booking: {}", r.body);
    let r = send_json(
        &instance,
        "PATCH",
        &format!("{appointments}/999999"),
        &access,
        cancel,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let r = send_json(
        &instance,
        "PATCH",
        &format!("{appointments}/{id}"),
        &access,
        r#"[{"op":"replace","path":"/start","value":"2027-01-11T09:00:00Z"}]"#,
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = send_json(
        &instance,
        "PUT",
        &format!("{appointments}/{id}"),
        &access,
        &appointment("cancelled", "2027-01-10T09:00:00Z", "2027-01-10T09:30:00Z"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "cancelled");
    let listed = api(&instance, &appointments, &access).json().to_string();
    assert!(listed.contains(r#""status":"cancelled""#), "{listed}");
    let store = open_store(&instance).await;
    let pa = store.account_by_address(A).await.unwrap().unwrap();
    let trail: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE actor = 'service:suivi-tension' AND target = $1 \
         AND action LIKE 'agenda.%' ORDER BY id",
    )
    .bind(A)
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(trail, ["agenda.service_book", "agenda.service_cancel"]);
    let organizer: String = sqlx::query_scalar("SELECT organizer FROM appointments WHERE id = $1")
        .bind(id.parse::<i64>().unwrap())
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(organizer, "service:suivi-tension");

    // A notification, in the INBOX from the service's fixed address.
    store
        .set_patient_settings(pa.id, Some("marie@perso.example"), true)
        .await
        .unwrap();
    let communications = format!("{fhir}/Communication");
    let before = common::inbox(&store, A).await.len();
    let r = send_json(
        &instance,
        "POST",
        &communications,
        &access,
        &communication("Votre relevé de tension de la semaine est prêt dans l'application."),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let inbox = common::inbox(&store, A).await;
    assert_eq!(inbox.len(), before + 1);
    let m = mail_parser::MessageParser::default()
        .parse(&inbox[inbox.len() - 1].data)
        .unwrap();
    let from = m.from().and_then(|f| f.first()).unwrap();
    assert_eq!(
        from.address(),
        Some("no-reply+suivi-tension@patient.mes.test")
    );
    assert_eq!(from.name(), Some("Suivi Tension (service connecté)"));
    assert_eq!(m.subject(), Some("Votre relevé hebdomadaire"));
    assert_eq!(m.attachment_count(), 0);
    // The patient's new-message notice, as for any message: content-free.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while notices.lock().unwrap().is_empty() && std::time::Instant::now() < end {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sent = notices.lock().unwrap().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].contains("marie@perso.example"), "{}", sent[0]);
    assert!(
        !sent[0].contains("relev") && !sent[0].contains("Suivi Tension"),
        "no content, no sender: {}",
        sent[0]
    );
    b.goto(&format!("{url}/messagerie")).await;
    let text = b.main_text().await;
    assert!(
        text.contains("Suivi Tension (service connecté)")
            && text.contains("Votre relevé hebdomadaire"),
        "{text}"
    );
    // Its thread is ended: nothing to reply to.
    let thread: i64 = sqlx::query_scalar(
        "SELECT id FROM threads WHERE patient_id = $1 AND correspondent = $2 AND status <> 'open'",
    )
    .bind(pa.id)
    .bind("no-reply+suivi-tension@patient.mes.test")
    .fetch_one(store.pool())
    .await
    .unwrap();
    b.goto(&format!("{url}/messagerie/{thread}")).await;
    assert!(
        b.main_text()
            .await
            .contains("Votre relevé de tension de la semaine")
    );
    assert_eq!(b.count("form[action$='/repondre']").await, 0);
    assert_eq!(b.count("p.fin").await, 1);
    // Refused: an attachment, a text too long; then the daily limit.
    let attached = serde_json::json!({
        "resourceType": "Communication",
        "payload": [{ "contentAttachment": { "contentType": "application/pdf", "data": "JVBERi0=" } }],
    });
    let r = send_json(
        &instance,
        "POST",
        &communications,
        &access,
        &attached.to_string(),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = send_json(
        &instance,
        "POST",
        &communications,
        &access,
        &communication(&"é".repeat(2001)),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let r = send_json(
        &instance,
        "POST",
        &communications,
        &access,
        &communication("Deuxième"),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = send_json(
        &instance,
        "POST",
        &communications,
        &access,
        &communication("Troisième"),
    );
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(common::inbox(&store, A).await.len(), before + 2);
    let notified: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE actor = 'service:suivi-tension' \
         AND action = 'service.notify' AND target = $1",
    )
    .bind(A)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(notified, 2);

    // Without the scope: 403 for both, nothing written.
    let r = refresh(
        &instance,
        &url,
        "suivi-tension",
        &refresh_token,
        Some("agenda.read"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let reader = r.json()["access_token"].as_str().unwrap().to_string();
    let r = send_json(
        &instance,
        "POST",
        &appointments,
        &reader,
        &appointment("booked", "2027-01-12T09:00:00Z", "2027-01-12T09:30:00Z"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = send_json(
        &instance,
        "POST",
        &communications,
        &reader,
        &communication("Sans droit"),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        store.all_appointments_of(pa.id).await.unwrap().len(),
        2,
        "the invitation and the cancelled booking only"
    );
    b.close().await;
}

both_backends!(agenda_write_and_notifications);

/// An access token past its lifetime is refused (its row's times moved back
/// by the lifetime: the server's clock cannot be moved from outside), the
/// refresh token still works; a representative cannot approve or disconnect
/// a service in the child's space; a closed space refuses every call at the
/// gate (audited `Closed`) and gets no new token; destroying it deletes the
/// connection and its tokens. The metadata names the
/// configured public URL, whatever Host the client used.
async fn expiry_closure_and_representatives(db: Db) {
    const PUBLIC: &str = "https://mes.hopital-a.mes.test";
    let (instance, _server, url, redirect) = setup_with(db, |c| {
        c.replace(
            "[clients]\n",
            &format!("[clients]\nweb_url = \"{PUBLIC}\"\n"),
        )
    })
    .await;
    let meta = curl(
        &instance,
        &format!("{url}/.well-known/oauth-authorization-server"),
        &[],
    )
    .json();
    assert_eq!(meta["issuer"], PUBLIC);
    assert_eq!(
        meta["authorization_endpoint"],
        format!("{PUBLIC}/oauth/authorize")
    );
    assert_eq!(meta["token_endpoint"], format!("{PUBLIC}/oauth/token"));
    assert_eq!(
        meta["revocation_endpoint"],
        format!("{PUBLIC}/oauth/revoke")
    );

    add_service(
        &instance,
        "suivi-tension",
        "Suivi Tension",
        &redirect,
        "documents.read",
        &[],
    );
    instance.run(&["representative", "add", A_INS, B], None);
    let b = logged_in(&instance, &url, Viewport::Desktop).await;
    let (access, refresh_token) = connect(
        &instance,
        &b,
        &url,
        "suivi-tension",
        &redirect,
        "documents.read",
    )
    .await;
    b.close().await;
    let docs = format!("{url}/fhir/r4/DocumentReference");
    assert_eq!(api(&instance, &docs, &access).status, 200);

    // Past its lifetime.
    let store = open_store(&instance).await;
    sqlx::query("UPDATE oauth_tokens SET expires_at = expires_at - $1 WHERE kind = 'access'")
        .bind(mes::services::ACCESS_SECS)
        .execute(store.pool())
        .await
        .unwrap();
    let r = api(&instance, &docs, &access);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(
        r.headers
            .contains("www-authenticate: bearer error=\"invalid_token\""),
        "{}",
        r.headers
    );
    let r = refresh(&instance, &url, "suivi-tension", &refresh_token, None);
    assert_eq!(r.status, 200, "{}", r.body);
    let access = r.json()["access_token"].as_str().unwrap().to_string();
    let refresh_token = r.json()["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(api(&instance, &docs, &access).status, 200);

    // The representative (B) in the child's space (A).
    let pa = store.account_by_address(A).await.unwrap().unwrap();
    let rb = Browser::start(&instance.cert("ca.pem"), Viewport::Desktop).await;
    rb.goto(&format!("{url}/connexion")).await;
    rb.fill("#login", B.split('@').next().unwrap()).await;
    rb.fill("#password", PW).await;
    rb.navigate_by("main button[type=submit]").await;
    rb.js(&format!(
        "document.querySelector('#espace').value = '{}';",
        pa.id
    ))
    .await;
    rb.navigate_by("form.espaces button[type=submit]").await;
    let text = rb.main_text().await;
    assert!(
        text.contains("Vous consultez l'espace de Marie Martin"),
        "{text}"
    );
    let codes = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM oauth_codes")
            .fetch_one(store.pool())
            .await
            .unwrap()
    };
    let codes_before = codes().await;
    rb.goto(&authorize_url(
        &url,
        "suivi-tension",
        &redirect,
        "documents.read",
        "s",
    ))
    .await;
    rb.navigate_by("button[value=autoriser]").await;
    let text = rb.main_text().await;
    assert!(text.contains("Revenez à votre propre espace"), "{text}");
    assert_eq!(
        codes().await,
        codes_before,
        "no code for the representative"
    );
    rb.goto(&format!("{url}/services/connectes")).await;
    rb.navigate_by("form[action='/services/suivi-tension/deconnecter'] button")
        .await;
    let text = rb.main_text().await;
    assert!(text.contains("Revenez à votre propre espace"), "{text}");
    assert!(store.grant(pa.id, "suivi-tension").await.unwrap().is_some());
    assert_eq!(
        api(&instance, &docs, &access).status,
        200,
        "still connected"
    );
    rb.close().await;

    // The space is closed: refused at the gate, on the trail; no new token.
    instance.run(&["close", A_INS], None);
    let r = api(&instance, &docs, &access);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("closed"), "{}", r.body);
    let closed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE target = $1 AND actor = 'service:suivi-tension' \
         AND action = 'record.refused' AND detail LIKE '%Closed%'",
    )
    .bind(A)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(closed, 1);
    let r = refresh(&instance, &url, "suivi-tension", &refresh_token, None);
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.json()["error"], "invalid_grant");
    // Reopened: the live access token works again.
    instance.run(&["reopen", A_INS], None);
    assert_eq!(api(&instance, &docs, &access).status, 200);
    // Destroyed: the connection and its tokens go with the space.
    let out = instance.run(&["close", A_INS, "--destroy"], None);
    assert!(out.contains("destroyed"), "{out}");
    for table in ["service_grants", "oauth_codes", "oauth_tokens"] {
        let left: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM {table} WHERE patient_id = $1"
        ))
        .bind(pa.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
        assert_eq!(left, 0, "{table}");
    }
    assert_eq!(api(&instance, &docs, &access).status, 401);
}

both_backends!(expiry_closure_and_representatives);
