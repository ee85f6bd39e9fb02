//! Headless Chromium driven over WebDriver (chromedriver + fantoccini) for the
//! webmail tests. The browser trusts the instance's development CA through its
//! own NSS database (no certificate error is ignored), downloads into a folder
//! of its own, and is stopped with its driver, process group and all.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A viewport the journey runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewport {
    /// 1280 × 900.
    Desktop,
    /// A 360 × 740 phone (device emulation).
    Phone,
}

impl Viewport {
    pub fn label(self) -> &'static str {
        match self {
            Viewport::Desktop => "desktop",
            Viewport::Phone => "phone-360x740",
        }
    }
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    pub dir: tempfile::TempDir,
    pub downloads: PathBuf,
    pub shots: PathBuf,
    pub viewport: Viewport,
}

fn tool(var: &str, default: &str) -> String {
    let path = std::env::var(var).unwrap_or_else(|_| default.to_string());
    assert!(
        Path::new(&path).exists(),
        "{path} not found: the webmail tests need Debian's chromium and chromium-driver \
         (and libnss3-tools); ./scripts/test installs them"
    );
    path
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Where screenshots go: `target/tmp/webmail-screenshots/<viewport>/` unless
/// `MES_TEST_OUTPUT` names another folder.
pub fn screenshot_dir(viewport: Viewport) -> PathBuf {
    let base = std::env::var("MES_TEST_OUTPUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_TARGET_TMPDIR")))
        .join("webmail-screenshots")
        .join(viewport.label());
    std::fs::create_dir_all(&base).expect("screenshot dir");
    base
}

impl Browser {
    /// Starts chromedriver and a Chromium session that trusts `ca`.
    pub async fn start(ca: &Path, viewport: Viewport) -> Browser {
        let chromium = tool("MES_TEST_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = tool("MES_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
        let certutil = tool("MES_TEST_CERTUTIL", "/usr/bin/certutil");
        let dir = tempfile::tempdir().expect("tempdir");
        let home = dir.path().join("home");
        let nss = home.join(".pki/nssdb");
        std::fs::create_dir_all(&nss).expect("nssdb");
        let db = format!("sql:{}", nss.display());
        run(Command::new(&certutil).args(["-d", &db, "-N", "--empty-password"]));
        run(Command::new(&certutil).args([
            "-d",
            &db,
            "-A",
            "-t",
            "C,,",
            "-n",
            "mes-test-ca",
            "-i",
            ca.to_str().expect("utf-8"),
        ]));
        let downloads = dir.path().join("downloads");
        std::fs::create_dir_all(&downloads).expect("downloads");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log");
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(&chromedriver)
                .arg(format!("--port={port}"))
                .env("HOME", &home)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("chromedriver")
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (width, height) = match viewport {
            Viewport::Desktop => (1280, 900),
            Viewport::Phone => (360, 740),
        };
        let mut options = json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--disable-dev-shm-usage",
                format!("--user-data-dir={}", dir.path().join("profile").display()),
                format!("--window-size={width},{height}"),
            ],
            "prefs": {
                "download.default_directory": downloads.to_str().expect("utf-8"),
                "download.prompt_for_download": false,
                "safebrowsing.enabled": false,
            },
        });
        if viewport == Viewport::Phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "touch": true },
            });
        }
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("WebDriver session");
        Browser {
            client,
            driver,
            dir,
            downloads,
            shots: screenshot_dir(viewport),
            viewport,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.expect(css);
        e.clear().await.expect("clear");
        e.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .expect(css)
            .click()
            .await
            .expect("click");
    }

    /// Clicks something that loads a new page (link, submit button) and waits
    /// until the new document has replaced the old one and finished loading.
    pub async fn navigate_by(&self, css: &str) {
        self.js("window.__mesOldPage = true;").await;
        self.click(css).await;
        self.wait_new_page(css).await;
    }

    /// Waits until the page marked by `window.__mesOldPage = true` is replaced.
    pub async fn wait_new_page(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let done = self
                .client
                .execute(
                    "return window.__mesOldPage === undefined && document.readyState === 'complete';",
                    vec![],
                )
                .await
                .map(|v| v == Value::Bool(true))
                .unwrap_or(false);
            if done {
                return;
            }
            assert!(Instant::now() < deadline, "no new page after {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses one key (a character, or a `fantoccini::key::Key` as char) on
    /// whatever has the focus, as a keyboard user would.
    pub async fn press(&self, key: char) {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        self.client
            .perform_actions(
                KeyActions::new("clavier".into())
                    .then(KeyAction::Down { value: key })
                    .then(KeyAction::Up { value: key }),
            )
            .await
            .expect("key");
    }

    /// Types text on whatever has the focus.
    pub async fn type_text(&self, text: &str) {
        for c in text.chars() {
            self.press(c).await;
        }
    }

    /// `id` (or, without one, the class) of the focused element.
    pub async fn focused(&self) -> String {
        self.js("const e = document.activeElement; return e.id || e.className || e.tagName;")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The visible text of the page's `<main>`.
    pub async fn main_text(&self) -> String {
        self.client
            .find(Locator::Css("main"))
            .await
            .expect("main")
            .text()
            .await
            .expect("text")
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .expect("find_all")
            .len()
    }

    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.expect("script")
    }

    /// Writes a PNG of the page to the screenshot folder.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Runs axe-core on the page; panics listing every serious or critical violation.
    pub async fn check_accessibility(&self, page: &str) {
        let source = std::fs::read_to_string(axe_path()).expect("axe.min.js");
        self.client
            .execute(&source, vec![])
            .await
            .expect("inject axe-core");
        let result = self
            .client
            .execute_async(
                r#"const done = arguments[arguments.length - 1];
                   window.axe.run(document, { resultTypes: ['violations'] })
                     .then(r => done(JSON.stringify(r.violations.map(v => ({
                        id: v.id, impact: v.impact, help: v.help,
                        nodes: v.nodes.map(n => n.target.join(' ')) })))))
                     .catch(e => done('axe failed: ' + e));"#,
                vec![],
            )
            .await
            .expect("axe.run");
        let text = result.as_str().expect("axe result").to_string();
        let violations: Vec<Value> =
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
        let grave: Vec<&Value> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .collect();
        assert!(
            grave.is_empty(),
            "{page} ({}): axe-core serious/critical violations: {grave:#?}",
            self.viewport.label()
        );
    }

    /// Fails when the page is wider than the viewport (horizontal scrolling).
    pub async fn check_no_horizontal_scroll(&self, page: &str) {
        let v = self
            .js("return [document.documentElement.scrollWidth, window.innerWidth];")
            .await;
        let (scroll, inner) = (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0));
        assert!(
            scroll <= inner,
            "{page} ({}): content {scroll}px wide in a {inner}px viewport",
            self.viewport.label()
        );
    }

    /// Waits for a finished download named `name`; returns its bytes.
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.join(name);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if path.exists() {
                return std::fs::read(&path).expect("download");
            }
            assert!(
                Instant::now() < deadline,
                "no download {name} in {:?}",
                std::fs::read_dir(&self.downloads).map(|d| d
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name())
                    .collect::<Vec<_>>())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop();
    }

    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            self.stop();
        }
    }
}

/// axe-core's browser bundle: `MES_TEST_AXE`, else where ./scripts/test installs it.
pub fn axe_path() -> PathBuf {
    let path = std::env::var("MES_TEST_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/npm/node_modules/axe-core/axe.min.js")
        });
    assert!(
        path.exists(),
        "{} not found: ./scripts/test installs axe-core from npm (or set MES_TEST_AXE)",
        path.display()
    );
    path
}
