//! The patient webmail in a real browser (headless Chromium over WebDriver) and
//! over HTTP (curl): the whole patient journey at desktop size and on a 360 × 740
//! phone, with screenshots and an axe-core check of every page; CSRF, another
//! patient's thread, and hostile HTML mail.

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use browser::{Browser, Viewport};
use common::{Db, Instance, Server, inbox, open_store, submit};
use fantoccini::actions::InputSource;
use fantoccini::key::Key;

const PW: &str = "correct horse battery staple";
const JEAN: &str = "jean.dupont@hopital-a.mes.test";
const INS: &str = "279035121518989";
const PATIENT: &str = "279035121518989@patient.mes.test";
const OTHER_INS: &str = "184127645108946";
const OTHER: &str = "184127645108946@patient.mes.test";
const PATIENT_PW: &str = "jardin des plantes 7";

/// A small but well-formed PDF.
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj <</Type /Catalog /Pages 2 0 R>> endobj\n2 0 obj <</Type /Pages /Kids [] /Count 0>> endobj\ntrailer <</Root 1 0 R>>\n%%EOF\n";

/// An instance with Dr Jean Dupont and a patient whose space is not activated yet;
/// returns the activation code `mes user add` printed.
async fn setup() -> (Instance, Server, String) {
    let instance = Instance::new(Db::Sqlite).await;
    instance.add_professional(JEAN, "Dr Jean Dupont", "Médecin généraliste", PW);
    let out = instance.run(
        &[
            "user",
            "add",
            PATIENT,
            "--kind",
            "patient",
            "--name",
            "Marie Martin",
        ],
        None,
    );
    assert!(
        !out.contains("password:"),
        "a patient gets a code, not a password: {out}"
    );
    let code = out
        .lines()
        .find_map(|l| l.strip_prefix("activation code: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no activation code in {out}"))
        .to_string();
    let server = instance.start();
    (instance, server, code)
}

fn base(server: &Server) -> String {
    format!("https://localhost:{}", server.addr("https").port())
}

/// Dr Dupont writes to `to` over submission; `body` is the MIME body after the headers.
async fn pro_sends(instance: &Instance, server: &Server, to: &str, headers: &str, body: &str) {
    let data = format!(
        "From: \"Dr Jean Dupont\" <{JEAN}>\r\nTo: <{to}>\r\nDate: Thu, 26 Nov 2026 10:00:00 +0100\r\n{headers}\r\n{body}"
    );
    let code = submit(
        server.addr("submissions"),
        &instance.cert("ca.pem"),
        JEAN,
        PW,
        "",
        to,
        &data,
    )
    .await;
    assert_eq!(code, 250);
}

async fn pro_sends_results(instance: &Instance, server: &Server, to: &str) {
    let pdf = base64::engine::general_purpose::STANDARD.encode(PDF);
    pro_sends(
        instance,
        server,
        to,
        "Subject: Vos résultats d'analyse\r\nMessage-ID: <resultats-1@hopital-a.mes.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n",
        &format!(
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             Bonjour Madame Martin,\r\nVoici vos résultats. Ils sont normaux.\r\n\
             --b1\r\nContent-Type: application/pdf; name=\"resultats.pdf\"\r\n\
             Content-Disposition: attachment; filename=\"resultats.pdf\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{pdf}\r\n--b1--\r\n"
        ),
    )
    .await;
}

/// Checks a page: screenshot, axe-core, no horizontal scrolling.
/// A desktop browser where the patient has logged in with a password; and the base URL.
async fn logged_in(instance: &Instance, server: &Server) -> (Browser, String) {
    let b = Browser::start(&instance.cert("ca.pem"), Viewport::Desktop).await;
    let url = base(server);
    b.goto(&format!("{url}/connexion")).await;
    b.fill("#login", INS).await;
    b.fill("#password", PATIENT_PW).await;
    b.navigate_by("main button[type=submit]").await;
    (b, url)
}

async fn check_page(b: &Browser, name: &str) {
    b.screenshot(name).await;
    b.check_accessibility(name).await;
    b.check_no_horizontal_scroll(name).await;
}

/// The journey of the issue: activate, log in, read, download, reply with a PDF,
/// see the thread ended by the professional's [FIN] and the reply box gone.
async fn journey(viewport: Viewport) {
    let (instance, server, code) = setup().await;
    pro_sends_results(&instance, &server, PATIENT).await;
    let b = Browser::start(&instance.cert("ca.pem"), viewport).await;
    let url = base(&server);

    // Before activation the patient cannot log in; a wrong code is refused.
    b.goto(&format!("{url}/activation")).await;
    check_page(&b, "activation").await;
    b.fill("#login", INS).await;
    b.fill("#code", "AAAA-BBBB-CCCC").await;
    b.fill("#password", PATIENT_PW).await;
    b.fill("#confirm", PATIENT_PW).await;
    b.navigate_by("main button[type=submit]").await;
    let text = b.main_text().await;
    assert!(text.contains("code d'activation incorrect"), "{text}");
    // The code as printed, typed in lower case with spaces: accepted.
    b.fill("#login", INS).await;
    b.fill("#code", &code.to_lowercase().replace('-', " "))
        .await;
    b.fill("#password", PATIENT_PW).await;
    b.fill("#confirm", PATIENT_PW).await;
    b.navigate_by("main button[type=submit]").await;
    assert_eq!(b.path().await, "/connexion?etat=active");
    assert!(b.main_text().await.contains("Votre espace est activé"));
    check_page(&b, "connexion").await;

    // A wrong password, then the right one.
    b.fill("#login", INS).await;
    b.fill("#password", "pas le bon mot de passe 1").await;
    b.navigate_by("main button[type=submit]").await;
    assert!(
        b.main_text()
            .await
            .contains("Identifiant ou mot de passe incorrect")
    );
    // The right one, with the keyboard alone: skip link, fields, Enter.
    b.goto(&format!("{url}/connexion")).await;
    b.press(Key::Tab.into()).await;
    assert_eq!(b.focused().await, "evitement", "the skip link comes first");
    b.press(Key::Enter.into()).await;
    b.press(Key::Tab.into()).await;
    assert_eq!(
        b.focused().await,
        "login",
        "after the skip link: the first field"
    );
    b.type_text(INS).await;
    b.press(Key::Tab.into()).await;
    assert_eq!(b.focused().await, "password");
    b.type_text(PATIENT_PW).await;
    b.js("window.__mesOldPage = true;").await;
    b.press(Key::Enter.into()).await;
    b.wait_new_page("Enter").await;
    assert_eq!(b.path().await, "/messagerie");
    let list = b.main_text().await;
    for needle in [
        "Dr Jean Dupont",
        "Médecin généraliste",
        "Vos résultats d'analyse",
        "1 non lu",
    ] {
        assert!(
            list.contains(needle),
            "{needle} missing from the list: {list}"
        );
    }
    assert!(!list.contains("Échanges terminés"), "{list}");
    check_page(&b, "messagerie").await;

    // The thread: the message, its attachment downloaded byte for byte.
    b.navigate_by(".fils a").await;
    let thread_path = b.path().await;
    assert!(thread_path.starts_with("/messagerie/"), "{thread_path}");
    let page = b.main_text().await;
    assert!(page.contains("Voici vos résultats"), "{page}");
    assert!(page.contains("Télécharger resultats.pdf"), "{page}");
    check_page(&b, "fil").await;
    b.click(".pj a").await;
    assert_eq!(b.downloaded("resultats.pdf").await, PDF);

    // Reply with a PDF of the patient's own.
    let upload = b.dir.path().join("ordonnance-scannee.pdf");
    std::fs::write(&upload, PDF).unwrap();
    b.fill("#text", "Merci docteur, voici mon ordonnance.")
        .await;
    b.client
        .find(fantoccini::Locator::Css("#fichier"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    b.navigate_by(".repondre button[type=submit]").await;
    assert_eq!(b.path().await, format!("{thread_path}?etat=envoye"));
    let page = b.main_text().await;
    assert!(page.contains("Votre message a été envoyé"), "{page}");
    assert!(
        page.contains("Merci docteur, voici mon ordonnance."),
        "{page}"
    );
    assert!(
        page.contains("Télécharger ordonnance-scannee.pdf"),
        "{page}"
    );
    // The reply reached Dr Dupont's INBOX with the PDF.
    let store = open_store(&instance).await;
    let mail = inbox(&store, JEAN).await;
    assert_eq!(mail.len(), 1);
    let raw = String::from_utf8_lossy(&mail[0].data).into_owned();
    assert!(
        raw.contains("ordonnance-scannee.pdf") && raw.contains("application/pdf"),
        "{raw}"
    );
    assert!(
        raw.contains("In-Reply-To: <resultats-1@hopital-a.mes.test>"),
        "{raw}"
    );

    // The new-message page offers Dr Dupont while the thread is open.
    b.goto(&format!("{url}/messagerie/nouveau")).await;
    assert!(
        b.main_text()
            .await
            .contains("Dr Jean Dupont — Médecin généraliste")
    );
    check_page(&b, "nouveau").await;
    b.fill(
        "#text",
        "Une question encore : faut-il refaire la prise de sang ?",
    )
    .await;
    b.navigate_by("main button[type=submit]").await;
    assert_eq!(b.path().await, format!("{thread_path}?etat=envoye"));
    assert!(
        b.main_text()
            .await
            .contains("faut-il refaire la prise de sang"),
        "the new message joins the open thread"
    );
    assert_eq!(inbox(&store, JEAN).await.len(), 2);

    // Settings: notice address and switch.
    b.goto(&format!("{url}/parametres")).await;
    check_page(&b, "parametres").await;
    b.fill("#email", "marie.martin@exemple.fr").await;
    b.navigate_by("form[action='/parametres/notifications'] button")
        .await;
    assert_eq!(b.path().await, "/parametres?etat=notifications");
    assert_eq!(
        b.js("return document.querySelector('#email').value;").await,
        "marie.martin@exemple.fr"
    );

    // Dr Dupont ends the exchange; the reply box is gone.
    pro_sends(
        &instance,
        &server,
        PATIENT,
        "Subject: [FIN]\r\nIn-Reply-To: <resultats-1@hopital-a.mes.test>\r\n",
        "Bonne continuation.\r\n",
    )
    .await;
    b.goto(&format!("{url}{thread_path}")).await;
    let page = b.main_text().await;
    assert!(
        page.contains("Dr Jean Dupont a mis fin à vos échanges"),
        "{page}"
    );
    assert_eq!(b.count("textarea").await, 0, "no reply box once ended");
    assert_eq!(b.count("form[action$='/repondre']").await, 0);
    check_page(&b, "fil-termine").await;
    b.goto(&format!("{url}/messagerie")).await;
    assert!(b.main_text().await.contains("Échanges terminés"));
    b.goto(&format!("{url}/messagerie/nouveau")).await;
    assert_eq!(b.count("select").await, 0, "nobody to write to once ended");

    // An unknown thread: a French error page, itself accessible.
    b.goto(&format!("{url}/messagerie/999999")).await;
    assert!(b.main_text().await.contains("Page introuvable"));
    check_page(&b, "erreur").await;

    // Logging out ends the session.
    b.goto(&format!("{url}/messagerie")).await;
    b.navigate_by(".deconnexion button").await;
    assert_eq!(b.path().await, "/connexion?etat=deconnecte");
    b.goto(&format!("{url}/messagerie")).await;
    assert_eq!(b.path().await, "/connexion");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_journey_desktop() {
    journey(Viewport::Desktop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_journey_phone_360x740() {
    journey(Viewport::Phone).await;
}

/// A curl session with its own cookie jar, speaking to the webmail like a browser
/// without JavaScript would.
struct Web {
    jar: tempfile::NamedTempFile,
    ca: std::path::PathBuf,
    base: String,
}

/// A response: status, headers (lower-case names) and body.
struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn location(&self) -> Option<&str> {
        self.headers
            .lines()
            .find_map(|l| l.strip_prefix("location: "))
            .map(str::trim)
    }
}

impl Web {
    fn new(instance: &Instance, server: &Server) -> Web {
        Web {
            jar: tempfile::NamedTempFile::new().unwrap(),
            ca: instance.cert("ca.pem"),
            base: base(server),
        }
    }

    /// GET, or POST with `form` fields (`-F` style when `multipart`).
    fn call(&self, path: &str, form: Option<&[(&str, &str)]>, multipart: bool) -> Reply {
        let headers = tempfile::NamedTempFile::new().unwrap();
        let jar = self.jar.path().to_str().unwrap();
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sS",
            "--cacert",
            self.ca.to_str().unwrap(),
            "-b",
            jar,
            "-c",
            jar,
        ])
        .args([
            "-D",
            headers.path().to_str().unwrap(),
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("{}{path}", self.base));
        for (k, v) in form.unwrap_or_default() {
            cmd.arg(if multipart { "-F" } else { "--data-urlencode" })
                .arg(format!("{k}={v}"));
        }
        if form == Some(&[]) {
            cmd.args(["--data", ""]);
        }
        let out = cmd.output().expect("curl");
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

    fn get(&self, path: &str) -> Reply {
        self.call(path, None, false)
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> Reply {
        self.call(path, Some(form), false)
    }

    /// The anti-forgery token of the forms on `path`.
    fn csrf(&self, path: &str) -> String {
        let page = self.get(path);
        let start = page
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        page.body[start..start + 43].to_string()
    }

    fn login(&self, login: &str, password: &str) {
        let csrf = self.csrf("/connexion");
        let r = self.post(
            "/connexion",
            &[("csrf", &csrf), ("login", login), ("password", password)],
        );
        assert_eq!(r.status, 303, "{}", r.body);
        assert_eq!(r.location(), Some("/messagerie"));
    }
}

/// Patients with passwords (the activation is the journey's business).
async fn setup_with_passwords(config: impl FnOnce(String) -> String) -> (Instance, Server) {
    let instance = Instance::new(Db::Sqlite).await;
    instance.edit_config(config);
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    instance.add_user(OTHER, "patient", PATIENT_PW);
    let server = instance.start();
    (instance, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_form_needs_its_csrf_token() {
    let (instance, server) = setup_with_passwords(|c| c).await;
    pro_sends_results(&instance, &server, PATIENT).await;
    let web = Web::new(&instance, &server);

    // The login form itself: without the field, with a field but no cookie.
    let page = web.get("/connexion");
    assert!(
        page.headers.contains("set-cookie: __host-mes_csrf="),
        "{}",
        page.headers
    );
    for header in [
        "content-security-policy: default-src 'none'; style-src 'self'; img-src 'self'",
        "x-frame-options: deny",
        "x-content-type-options: nosniff",
    ] {
        assert!(
            page.headers.contains(header),
            "{header} missing: {}",
            page.headers
        );
    }
    let r = web.post("/connexion", &[("login", INS), ("password", PATIENT_PW)]);
    assert_eq!(r.status, 403);
    assert!(r.body.contains("Formulaire expiré"), "{}", r.body);
    // Anonymous forms take small bodies only.
    let big = "x".repeat(100 * 1024);
    let r = web.post("/connexion", &[("login", &big), ("password", "x")]);
    // 413, or (when the server answers and closes before curl has sent it all)
    // a connection reset, which curl reports as 0: either way it was not read.
    assert!(
        r.status == 413 || r.status == 0,
        "a 100 KiB login form is refused: {}",
        r.status
    );
    assert_eq!(web.get("/connexion").status, 200, "and the server goes on");
    let stranger = Web::new(&instance, &server);
    let csrf = web.csrf("/connexion");
    let r = stranger.post(
        "/connexion",
        &[("csrf", &csrf), ("login", INS), ("password", PATIENT_PW)],
    );
    assert_eq!(r.status, 403, "a token without its cookie is refused");

    // Logged in: the session cookie has every protection.
    let csrf = web.csrf("/connexion");
    let r = web.post(
        "/connexion",
        &[("csrf", &csrf), ("login", INS), ("password", PATIENT_PW)],
    );
    assert_eq!(r.status, 303);
    let cookie = r
        .headers
        .lines()
        .find(|l| l.starts_with("set-cookie: __host-mes_session="))
        .expect("session cookie");
    for attr in ["secure", "httponly", "samesite=strict", "path=/"] {
        assert!(cookie.contains(attr), "{attr} missing: {cookie}");
    }
    let csrf = web.csrf("/parametres");

    let store = open_store(&instance).await;
    let account = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let thread = store.threads_of(account.id).await.unwrap()[0].id;
    for (path, form) in [
        (
            "/parametres/notifications",
            vec![("email", "x@exemple.fr"), ("enabled", "1")],
        ),
        (
            "/parametres/mot-de-passe",
            vec![
                ("current", PATIENT_PW),
                ("password", "un autre mot 42"),
                ("confirm", "un autre mot 42"),
            ],
        ),
        ("/deconnexion", vec![]),
    ] {
        let r = web.post(path, &form);
        assert_eq!(r.status, 403, "{path} without token: {}", r.body);
        let mut wrong = form.clone();
        wrong.push(("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert_eq!(
            web.post(path, &wrong).status,
            403,
            "{path} with a wrong token"
        );
    }
    let r = web.call(
        &format!("/messagerie/{thread}/repondre"),
        Some(&[("text", "sans jeton")]),
        true,
    );
    assert_eq!(r.status, 403, "reply without token");
    // Nothing happened: settings, password, session and thread are unchanged.
    let (email, _, _) = store.patient_settings(account.id).await.unwrap();
    assert_eq!(email, None);
    assert_eq!(store.thread_messages(thread).await.unwrap().len(), 1);
    assert_eq!(web.get("/messagerie").status, 200, "still logged in");
    assert!(inbox(&store, JEAN).await.is_empty());

    // With the token, the same forms work.
    let r = web.post(
        "/parametres/notifications",
        &[
            ("csrf", &csrf),
            ("email", "marie@exemple.fr"),
            ("enabled", "1"),
        ],
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        store
            .patient_settings(account.id)
            .await
            .unwrap()
            .0
            .as_deref(),
        Some("marie@exemple.fr")
    );
    let r = web.call(
        &format!("/messagerie/{thread}/repondre"),
        Some(&[("csrf", &csrf), ("text", "avec jeton")]),
        true,
    );
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(inbox(&store, JEAN).await.len(), 1);
    assert_eq!(web.post("/deconnexion", &[("csrf", &csrf)]).status, 303);
    assert_eq!(web.get("/messagerie").location(), Some("/connexion"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_patients_thread_stays_closed() {
    let (instance, server) = setup_with_passwords(|c| c).await;
    pro_sends_results(&instance, &server, PATIENT).await;
    let store = open_store(&instance).await;
    let owner = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let thread = store.threads_of(owner.id).await.unwrap()[0].clone();
    let message = store.thread_messages(thread.id).await.unwrap()[0].message_id;

    let web = Web::new(&instance, &server);
    web.login(OTHER_INS, PATIENT_PW);
    let csrf = web.csrf("/messagerie");
    let own = web.get("/messagerie");
    assert!(
        !own.body.contains("Vos résultats"),
        "not in the other patient's list"
    );
    for path in [
        format!("/messagerie/{}", thread.id),
        format!(
            "/messagerie/{}/messages/{message}/pieces-jointes/0",
            thread.id
        ),
    ] {
        let r = web.get(&path);
        assert_eq!(r.status, 404, "{path}");
        assert!(
            !r.body.contains("Vos résultats") && !r.body.contains("%PDF"),
            "{path} leaks"
        );
    }
    let r = web.call(
        &format!("/messagerie/{}/repondre", thread.id),
        Some(&[("csrf", &csrf), ("text", "intrusion")]),
        true,
    );
    assert_eq!(r.status, 404);
    assert_eq!(store.thread_messages(thread.id).await.unwrap().len(), 1);
    let trail = mes::audit::entries_for(&store, PATIENT).await.unwrap();
    let denied: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "thread.access_denied" && e.actor == OTHER)
        .collect();
    assert_eq!(
        denied.len(),
        3,
        "each attempt is on the owner's trail: {trail:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_and_failed_logins_are_throttled() {
    let (instance, server) =
        setup_with_passwords(|c| c.replace("[patients]\n", "[patients]\nsession_idle_secs = 2\n"))
            .await;
    let web = Web::new(&instance, &server);
    web.login(INS, PATIENT_PW);
    assert_eq!(web.get("/messagerie").status, 200);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = web.get("/messagerie");
    assert_eq!(r.location(), Some("/connexion?etat=expiree"));
    assert!(
        web.get("/connexion?etat=expiree")
            .body
            .contains("Votre session a expiré")
    );

    let mut last = None;
    for _ in 0..6 {
        let csrf = web.csrf("/connexion");
        last = Some(web.post(
            "/connexion",
            &[
                ("csrf", &csrf),
                ("login", OTHER_INS),
                ("password", "mauvais mot de passe 1"),
            ],
        ));
    }
    let r = last.unwrap();
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(
        r.body.contains("Trop de tentatives de connexion"),
        "{}",
        r.body
    );
    // Even the right password waits for the lockout to end.
    let csrf = web.csrf("/connexion");
    let r = web.post(
        "/connexion",
        &[
            ("csrf", &csrf),
            ("login", OTHER_INS),
            ("password", PATIENT_PW),
        ],
    );
    assert_eq!(r.status, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_html_mail_is_inert_in_the_browser() {
    let (instance, server) = setup_with_passwords(|c| c).await;
    // A "remote" server: any request to it means a remote image or resource loaded.
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    sink.set_nonblocking(true).unwrap();
    let remote = format!("http://127.0.0.1:{}", sink.local_addr().unwrap().port());
    let html = format!(
        "<html><head><style>body {{ background: url({remote}/style.png) }}</style>\
         <script>window.pwned = 'script';</script></head>\
         <body onload=\"window.pwned = 'onload'\">\
         <p onmouseover=\"window.pwned = 'mouseover'\">Bonjour, voici le compte rendu.</p>\
         <img src=\"{remote}/pixel.png\" onerror=\"window.pwned = 'onerror'\">\
         <img src=\"x\" onerror=\"window.pwned = 'onerror2'\">\
         <a id=\"piege\" href=\"javascript:window.pwned='link'\">Cliquez ici</a>\
         <a href=\"https://example.org/infos\">Informations</a>\
         <iframe src=\"{remote}/frame\"></iframe>\
         <form action=\"{remote}/form\"><input name=\"q\"></form>\
         <svg><script>window.pwned = 'svg'</script></svg>\
         </body></html>"
    );
    pro_sends(
        &instance,
        &server,
        PATIENT,
        "Subject: Compte rendu\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n",
        &format!("{html}\r\n"),
    )
    .await;

    let (b, _) = logged_in(&instance, &server).await;
    b.navigate_by(".fils a").await;
    let page = b.main_text().await;
    assert!(page.contains("Bonjour, voici le compte rendu."), "{page}");
    assert!(
        page.contains("Cliquez ici") && page.contains("Informations"),
        "{page}"
    );
    // Hover the paragraph and click the former javascript: link.
    let p = b
        .client
        .find(fantoccini::Locator::Css(".corps p"))
        .await
        .unwrap();
    b.client
        .perform_actions(
            fantoccini::actions::MouseActions::new("souris".into()).then(
                fantoccini::actions::PointerAction::MoveToElement {
                    element: p,
                    duration: None,
                    x: 0.0,
                    y: 0.0,
                },
            ),
        )
        .await
        .unwrap();
    let links = b
        .client
        .find_all(fantoccini::Locator::Css(".corps a"))
        .await
        .unwrap();
    for a in &links {
        let href = a.attr("href").await.unwrap();
        assert!(
            href.as_deref().is_none_or(|h| h.starts_with("https://")),
            "link kept a dangerous target: {href:?}"
        );
    }
    b.click(".corps a:not([href])").await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    assert_eq!(b.js("return window.pwned === undefined;").await, true);
    let active = b
        .js("return document.querySelectorAll('.corps script, .corps img, .corps iframe, \
             .corps form, .corps style, .corps [onload], .corps [onerror], .corps [onmouseover]').length;")
        .await;
    assert_eq!(active, 0);
    assert_eq!(
        b.js("return document.querySelector('.corps a[href]').rel;")
            .await,
        "noopener noreferrer nofollow"
    );
    assert!(
        sink.accept().is_err(),
        "the page fetched something from the remote server"
    );
    b.screenshot("html-hostile").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dossier_in_the_browser() {
    let (instance, server) = setup_with_passwords(|c| c).await;
    for name in ["VSM_1.4_2022.01", "BIO-CR-BIO_2024.01_TSH_1"] {
        let code = common::send_xdm(
            &instance,
            &server,
            (JEAN, PW),
            PATIENT,
            &common::xdm_sample(name),
            "",
        )
        .await;
        assert_eq!(code, 250, "{name}");
    }
    let (b, url) = logged_in(&instance, &server).await;

    // Documents under their category.
    b.navigate_by("nav a[href='/dossier']").await;
    let page = b.main_text().await;
    for needle in [
        "Synthèses",
        "Synthèse Médicale",
        "Biologie",
        "Compte rendu d'examens biologiques",
        "Stéphane MEDIONI",
    ] {
        assert!(page.contains(needle), "{needle} missing: {page}");
    }
    check_page(&b, "dossier").await;

    // The synthesis, readable: header and section narratives.
    b.navigate_by("a[href^='/dossier/']:not([href='/dossier/ajouter'])")
        .await;
    let doc_path = b.path().await;
    let page = b.main_text().await;
    assert!(page.contains("Synthèse Médicale"), "{page}");
    assert!(
        page.contains("PLAVIX"),
        "the treatments section is shown: {page}"
    );
    assert_eq!(b.count(".section-cda script, .section-cda img").await, 0);
    check_page(&b, "document").await;

    // Hidden from professionals, with the state shown on the page and the list.
    b.navigate_by("form[action$='/masquer'] button").await;
    assert_eq!(b.path().await, format!("{doc_path}?etat=masque"));
    assert!(
        b.main_text()
            .await
            .contains("masqué aux professionnels de santé")
    );
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    let id: i64 = doc_path.rsplit('/').next().unwrap().parse().unwrap();
    assert!(
        store
            .document_of(patient.id, id)
            .await
            .unwrap()
            .unwrap()
            .hidden
    );
    b.goto(&format!("{url}/dossier")).await;
    assert!(b.main_text().await.contains("Masqué aux professionnels"));

    // The profile shows the synthesis' items with their provenance; the patient adds one.
    b.navigate_by("nav a[href='/profil']").await;
    let page = b.main_text().await;
    assert!(page.contains("PLAVIX 75 mg, comprimé pelliculé"), "{page}");
    assert!(page.contains("Source : Synthèse Médicale"), "{page}");
    check_page(&b, "profil").await;
    b.fill("#label", "Pollen de bouleau").await;
    b.client
        .find(fantoccini::Locator::Css(
            "#category option[value='allergies']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.navigate_by("form[action='/profil'] button").await;
    let page = b.main_text().await;
    assert!(
        page.contains("Pollen de bouleau") && page.contains("Déclaré par vous"),
        "{page}"
    );

    // The patient adds a document of their own.
    b.goto(&format!("{url}/dossier/ajouter")).await;
    check_page(&b, "ajouter-document").await;
    let upload = b.dir.path().join("bilan.pdf");
    std::fs::write(&upload, PDF).unwrap();
    b.fill("#title", "Bilan sanguin de ville").await;
    b.client
        .find(fantoccini::Locator::Css("#fichier"))
        .await
        .unwrap()
        .send_keys(upload.to_str().unwrap())
        .await
        .unwrap();
    b.navigate_by("main button[type=submit]").await;
    assert_eq!(b.path().await, "/dossier?etat=ajoute");
    let page = b.main_text().await;
    assert!(
        page.contains("Bilan sanguin de ville") && page.contains("Ajouté par vous"),
        "{page}"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_a_professional_in_the_browser() {
    let instance = Instance::new(Db::Sqlite).await;
    instance.add_named_user(JEAN, "professional", "Dr Jean Dupont", PW);
    instance.add_user(PATIENT, "patient", PATIENT_PW);
    let traitant = common::professional(&instance, "traitant", "Dr Claire Traitant");
    let server = instance.start();
    let code = common::send_xdm(
        &instance,
        &server,
        (JEAN, PW),
        PATIENT,
        &common::xdm_sample("VSM_1.4_2022.01"),
        "",
    )
    .await;
    assert_eq!(code, 250);
    let list = format!("/api/pro/v1/patients/{INS}/documents");

    let (b, url) = logged_in(&instance, &server).await;

    // The patient authorises Dr Traitant; the practice software reads the record.
    b.navigate_by("nav a[href='/professionnels']").await;
    check_page(&b, "professionnels").await;
    b.fill("#address", &traitant.address).await;
    b.navigate_by("form[action='/professionnels'] button[type=submit]")
        .await;
    assert!(b.main_text().await.contains("Dr Claire Traitant"));
    assert_eq!(common::pro_get(&server, &instance, &traitant, &list).0, 200);

    // Blocked from the page: the very next read is refused.
    b.navigate_by(".professionnel form button").await;
    assert_eq!(b.path().await, "/professionnels?etat=bloque");
    assert!(b.main_text().await.contains("Bloqué"));
    let (code, body) = common::pro_get(&server, &instance, &traitant, &list);
    assert_eq!(code, 403, "{body}");

    // Both the read and the refusal are in the history, newest first.
    b.navigate_by("nav a[href='/historique']").await;
    check_page(&b, "historique").await;
    let items = b
        .js("return [...document.querySelectorAll('.historique li')].map(li => li.innerText);")
        .await;
    let items: Vec<String> = items
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let refused = items
        .iter()
        .position(|t| {
            t.contains("Accès à votre dossier refusé")
                && t.contains("Dr Claire Traitant (Médecin, CHU de Test)")
        })
        .unwrap_or_else(|| panic!("refusal not in {items:?}"));
    let read = items
        .iter()
        .position(|t| {
            t.contains("Consultation de votre dossier") && t.contains("Dr Claire Traitant")
        })
        .unwrap_or_else(|| panic!("read not in {items:?}"));
    assert!(refused < read, "newest first: {items:?}");
    // Filter by type.
    b.goto(&format!("{url}/historique?type=systeme")).await;
    assert!(!b.main_text().await.contains("Dr Claire Traitant"));

    // The emergency consents are set on the same page.
    b.goto(&format!("{url}/professionnels")).await;
    b.click("#btg-refuse").await;
    b.navigate_by("form[action='/professionnels/consentements'] button")
        .await;
    assert_eq!(b.path().await, "/professionnels?etat=consentements");
    let store = open_store(&instance).await;
    let patient = store.account_by_address(PATIENT).await.unwrap().unwrap();
    assert!(!store.consents(patient.id).await.unwrap().break_glass);
    b.close().await;
}
