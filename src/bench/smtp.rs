//! `mes bench smtp`: N concurrent TLS sessions (lettre) sending messages of a given
//! size; prints messages/second and p50/p99 latency of the final 250.
//!
//! With `--acked-log` every message that got its 250 is recorded (one token a
//! line, flushed at once): the crash test uses this to check that nothing
//! acknowledged is ever lost.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use lettre::Message;
use lettre::address::{Address as LettreAddress, Envelope};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, Identity, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use rustls_pki_types::pem::PemObject;
use tokio::net::TcpStream;

/// Arguments of `mes bench smtp`.
#[derive(Debug, Clone, Args)]
pub struct SmtpBenchArgs {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub server: SocketAddr,
    /// Name to verify in the server certificate.
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// Implicit TLS (port 465) instead of STARTTLS.
    #[arg(long)]
    pub implicit_tls: bool,
    /// CA certificate (PEM) to verify the server with.
    #[arg(long)]
    pub ca: PathBuf,
    /// Client certificate (PEM), for mutual TLS on MX.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Login for AUTH PLAIN (password from MES_BENCH_PASSWORD).
    #[arg(long)]
    pub user: Option<String>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Messages in all.
    #[arg(long, default_value_t = 2000)]
    pub messages: u64,
    /// Message size in octets (body padded to reach it).
    #[arg(long, default_value_t = 4096)]
    pub size: usize,
    /// Envelope and header sender.
    #[arg(long)]
    pub from: String,
    /// Recipient.
    #[arg(long)]
    pub to: String,
    /// Stop after this many seconds even if messages remain.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Keep going after errors (server restarts); count them.
    #[arg(long)]
    pub keep_going: bool,
    /// Append the token of every acknowledged message to this file.
    #[arg(long)]
    pub acked_log: Option<PathBuf>,
    /// A prefix making this run's tokens unique.
    #[arg(long, default_value = "bench")]
    pub run_id: String,
    /// Attach this file to every message as `IHE_XDM.ZIP` (application/zip):
    /// measures delivery with indexing of structured attachments. A folder:
    /// its files in name order, one per message, round robin (distinct
    /// packages, so that no document is stored only once for all messages).
    #[arg(long)]
    pub attach: Option<PathBuf>,
    /// Add an iMIP invitation (text/calendar; method=REQUEST, a UID of its
    /// own per message) to every message: sent by a professional to a
    /// patient, measures delivery with indexing into the patient's agenda.
    #[arg(long, conflicts_with = "attach")]
    pub invitation: bool,
}

/// Result of one run.
#[derive(Debug, Clone)]
pub struct SmtpBenchReport {
    /// Messages acknowledged with 250.
    pub sent: u64,
    /// Failed sends.
    pub errors: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Sorted latencies of acknowledged sends.
    pub latencies: Vec<Duration>,
}

impl SmtpBenchReport {
    /// Acknowledged messages per second.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl std::fmt::Display for SmtpBenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "sent {} messages in {:.2} s: {:.1} msg/s, p50 {:.1} ms, p99 {:.1} ms, errors {}",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.rate(),
            super::percentile_ms(&self.latencies, 0.50),
            super::percentile_ms(&self.latencies, 0.99),
            self.errors
        )
    }
}

/// One benchmark session: lettre's SMTP connection over a socket with TCP_NODELAY
/// (lettre's own transport leaves Nagle on, which holds the end of DATA back by a
/// delayed ACK and caps every connection near 25 messages/second).
async fn connect(args: &SmtpBenchArgs) -> anyhow::Result<AsyncSmtpConnection> {
    let tcp = TcpStream::connect(args.server).await?;
    tcp.set_nodelay(true)?;
    let hello = ClientId::Domain("bench.mes.test".into());
    let mut conn = if args.implicit_tls {
        let identity = match (&args.cert, &args.key) {
            (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
            _ => None,
        };
        let config = crate::tls::client_config(&[&args.ca], identity)?;
        let name = rustls_pki_types::ServerName::try_from(args.server_name.clone())?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        AsyncSmtpConnection::connect_with_transport(Box::new(TlsSocket(tls)), &hello).await?
    } else {
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await?;
        conn.starttls(tls_parameters(args)?, &hello).await?;
        conn
    };
    if let Some(user) = &args.user {
        let password =
            std::env::var("MES_BENCH_PASSWORD").context("MES_BENCH_PASSWORD is not set")?;
        conn.auth(
            &[Mechanism::Plain],
            &Credentials::new(user.clone(), password),
        )
        .await?;
    }
    Ok(conn)
}

fn tls_parameters(args: &SmtpBenchArgs) -> anyhow::Result<TlsParameters> {
    let ca = std::fs::read(&args.ca).with_context(|| format!("reading {}", args.ca.display()))?;
    let mut tls = TlsParameters::builder(args.server_name.clone())
        .add_root_certificate(Certificate::from_pem(&ca)?);
    if let (Some(cert), Some(key)) = (&args.cert, &args.key) {
        let cert = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
        let key = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
        // lettre's rustls Identity takes the certificate as DER and the key as PEM.
        let der = rustls_pki_types::CertificateDer::from_pem_slice(&cert)
            .context("client certificate")?;
        tls = tls.identify_with(Identity::from_pem(der.as_ref(), &key)?);
    }
    Ok(tls.build_rustls()?)
}

/// A TLS socket lettre can drive (implicit TLS, port 465).
#[derive(Debug)]
struct TlsSocket(tokio_rustls::client::TlsStream<TcpStream>);

impl lettre::transport::smtp::client::AsyncTokioStream for TlsSocket {
    fn peer_addr(&self) -> std::io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl tokio::io::AsyncRead for TlsSocket {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsSocket {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn build_message(
    args: &SmtpBenchArgs,
    token: &str,
    attachment: Option<&[u8]>,
) -> anyhow::Result<Message> {
    let line = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor\r\n";
    let mut body = String::with_capacity(args.size);
    body.push_str(&format!("token {token}\r\n"));
    while body.len() + line.len() < args.size.saturating_sub(300) {
        body.push_str(line);
    }
    let builder = Message::builder()
        .from(args.from.parse::<Mailbox>()?)
        .to(args.to.parse::<Mailbox>()?)
        .subject(format!("bench {token}"))
        .message_id(Some(format!("<{token}@bench.mes.test>")));
    if args.invitation {
        return Ok(builder.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::parse(
                            "text/calendar; method=REQUEST; charset=utf-8",
                        )?)
                        .body(invitation(token, &args.from, &args.to)),
                ),
        )?);
    }
    Ok(match attachment {
        None => builder.header(ContentType::TEXT_PLAIN).body(body)?,
        Some(zip) => builder.multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(body))
                .singlepart(
                    Attachment::new("IHE_XDM.ZIP".into())
                        .body(zip.to_vec(), ContentType::parse("application/zip")?),
                ),
        )?,
    })
}

/// An iTIP REQUEST whose UID is the message's token (so every message files
/// its own appointment), weekly with a time zone, as clients send them.
fn invitation(token: &str, from: &str, to: &str) -> String {
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//MES//bench//FR",
        "METHOD:REQUEST",
        "BEGIN:VEVENT",
        &format!("UID:{token}@bench.mes.test"),
        "SEQUENCE:0",
        "DTSTAMP:20260101T080000Z",
        "DTSTART;TZID=Europe/Paris:20270105T093000",
        "DTEND;TZID=Europe/Paris:20270105T100000",
        "RRULE:FREQ=WEEKLY;COUNT=10",
        "SUMMARY:Consultation de suivi",
        "LOCATION:Cabinet",
        &format!("ORGANIZER:mailto:{from}"),
        &format!("ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{to}"),
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
    .join("\r\n")
}

/// A message's token: unique in the run, and of the same width for every
/// message of a run (see [`Template`]).
fn token_of(run_id: &str, n: u64) -> String {
    format!("{run_id}-{n:010}")
}

/// A message built by lettre once per worker around a placeholder as wide as
/// the tokens, then copied with each token put in: base64-encoding a large
/// attachment for every message would make the load tool, which shares the
/// machine with the server, a large part of what is measured.
struct Template {
    bytes: Vec<u8>,
    spots: Vec<usize>,
    width: usize,
}

impl Template {
    fn new(
        args: &SmtpBenchArgs,
        width: usize,
        attachment: Option<&[u8]>,
    ) -> anyhow::Result<Template> {
        // `~` is in neither the base64 alphabet nor the filler text.
        let placeholder = "~".repeat(width);
        let bytes = build_message(args, &placeholder, attachment)?.formatted();
        let spots: Vec<usize> = memchr::memmem::find_iter(&bytes, placeholder.as_bytes()).collect();
        anyhow::ensure!(!spots.is_empty(), "the token is missing from the message");
        Ok(Template {
            bytes,
            spots,
            width,
        })
    }

    fn with_token(&self, token: &str) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(
            token.len() == self.width,
            "token {token} is not {} wide",
            self.width
        );
        let mut out = self.bytes.clone();
        for &at in &self.spots {
            if let Some(spot) = out.get_mut(at..at + self.width) {
                spot.copy_from_slice(token.as_bytes());
            }
        }
        Ok(out)
    }
}

/// Runs the load and returns the figures.
pub async fn run(args: SmtpBenchArgs) -> anyhow::Result<SmtpBenchReport> {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.messages as usize)));
    let log = match &args.acked_log {
        Some(p) => Some(Arc::new(Mutex::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?,
        ))),
        None => None,
    };
    let attachments: Arc<Vec<Vec<u8>>> = Arc::new(match &args.attach {
        Some(p) if p.is_dir() => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("reading {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            anyhow::ensure!(!files.is_empty(), "{} holds no file", p.display());
            files
                .iter()
                .map(|f| std::fs::read(f).with_context(|| format!("reading {}", f.display())))
                .collect::<anyhow::Result<_>>()?
        }
        Some(p) => vec![std::fs::read(p).with_context(|| format!("reading {}", p.display()))?],
        None => Vec::new(),
    });
    // Distinct packages: every message is built before the clock starts (the
    // load tool shares the machine; base64-encoding each package while
    // sending would be measured as the server's time), when they fit in 2 GiB.
    let prebuilt: Arc<Vec<Vec<u8>>> = Arc::new({
        let average = attachments.iter().map(Vec::len).sum::<usize>() / attachments.len().max(1);
        let total = (average * 4 / 3).saturating_mul(args.messages as usize);
        if attachments.len() > 1 && total < 2 << 30 {
            (0..args.messages)
                .map(|n| {
                    let attachment = attachments.get(n as usize % attachments.len());
                    build_message(
                        &args,
                        &token_of(&args.run_id, n),
                        attachment.map(Vec::as_slice),
                    )
                    .map(|m| m.formatted())
                })
                .collect::<anyhow::Result<_>>()?
        } else {
            Vec::new()
        }
    });
    let start = Instant::now();
    let stop_at = args.duration.map(|d| start + Duration::from_secs(d));
    let mut tasks = Vec::new();
    for _ in 0..args.connections.max(1) {
        let args = args.clone();
        let next = next.clone();
        let errors = errors.clone();
        let latencies = latencies.clone();
        let log = log.clone();
        let attachments = attachments.clone();
        let prebuilt = prebuilt.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn: Option<AsyncSmtpConnection> = None;
            let mut template: Option<Template> = None;
            let envelope = Envelope::new(
                Some(args.from.parse::<LettreAddress>()?),
                vec![args.to.parse::<LettreAddress>()?],
            )?;
            loop {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    return anyhow::Ok(());
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= args.messages {
                    return Ok(());
                }
                let token = token_of(&args.run_id, n);
                let message: std::borrow::Cow<'_, [u8]> = match attachments.len() {
                    0 | 1 => {
                        let template = match &template {
                            Some(t) => t,
                            None => template.insert(Template::new(
                                &args,
                                token.len(),
                                attachments.first().map(Vec::as_slice),
                            )?),
                        };
                        template.with_token(&token)?.into()
                    }
                    count => match prebuilt.get(n as usize) {
                        Some(message) => message.as_slice().into(),
                        None => {
                            let attachment = attachments.get(n as usize % count).map(Vec::as_slice);
                            build_message(&args, &token, attachment)?.formatted().into()
                        }
                    },
                };
                let t0 = Instant::now();
                let result = async {
                    if conn.is_none() {
                        conn = Some(connect(&args).await?);
                    }
                    match conn.as_mut() {
                        Some(c) => c
                            .send(&envelope, &message)
                            .await
                            .map_err(anyhow::Error::from),
                        None => Err(anyhow::anyhow!("not connected")),
                    }
                }
                .await;
                match result {
                    Ok(_) => {
                        let dt = t0.elapsed();
                        if let Some(log) = &log {
                            let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
                            writeln!(f, "{token}")?;
                            f.flush()?;
                        }
                        latencies.lock().unwrap_or_else(|p| p.into_inner()).push(dt);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        if !args.keep_going {
                            return Err(anyhow::anyhow!("send failed: {e}"));
                        }
                        // The server may be restarting: start over with a new connection.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        conn = None;
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("bench task")??;
    }
    let elapsed = start.elapsed();
    let mut latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
    latencies.sort();
    Ok(SmtpBenchReport {
        sent: latencies.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
        latencies,
    })
}
