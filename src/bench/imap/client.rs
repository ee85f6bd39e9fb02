//! A small tagged IMAP client over rustls: it sends commands and waits for
//! their tagged completion, reading literals whole. It works against any
//! IMAP server (MES, Dovecot), so that both are driven the same way.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// The server's answer to one command.
#[derive(Debug, Default)]
pub(super) struct Answer {
    /// Untagged lines, literals left out.
    pub(super) untagged: Vec<String>,
    /// The tagged completion line, without the tag.
    pub(super) done: String,
}

impl Answer {
    /// `n` from the first `* n WORD` line (EXISTS, …).
    pub(super) fn count(&self, word: &str) -> Option<usize> {
        self.untagged.iter().find_map(|l| {
            let rest = l.strip_prefix("* ")?;
            let (n, w) = rest.split_once(' ')?;
            (w == word).then(|| n.parse().ok()).flatten()
        })
    }

    /// The UID from an `[APPENDUID validity uid]` completion.
    pub(super) fn append_uid(&self) -> Option<u32> {
        let rest = self.done.split("[APPENDUID ").nth(1)?;
        rest.split([' ', ']']).nth(1)?.parse().ok()
    }
}

/// One IMAP connection.
pub(super) struct Client {
    conn: BufReader<TlsStream<TcpStream>>,
    tag: u64,
}

/// TLS settings for the clients: trust `ca` only.
pub(super) fn tls(ca: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    Ok(crate::tls::client_config(&[ca], None)?)
}

impl Client {
    /// Connects over implicit TLS (from `source` when given) and reads the greeting.
    pub(super) async fn connect(
        server: SocketAddr,
        tls: Arc<rustls::ClientConfig>,
        source: Option<IpAddr>,
    ) -> anyhow::Result<Client> {
        let socket = TcpSocket::new_v4()?;
        if let Some(ip) = source {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(server).await?;
        let name = rustls_pki_types::ServerName::try_from("localhost")?;
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, tcp)
            .await?;
        let mut c = Client {
            conn: BufReader::new(stream),
            tag: 0,
        };
        let greeting = c.line().await?;
        if !greeting.starts_with("* OK") {
            bail!("unexpected greeting: {greeting}");
        }
        Ok(c)
    }

    /// LOGIN with the password from `MES_BENCH_PASSWORD`.
    pub(super) async fn login(&mut self, user: &str) -> anyhow::Result<()> {
        let password =
            std::env::var("MES_BENCH_PASSWORD").context("MES_BENCH_PASSWORD is not set")?;
        self.command(&format!("LOGIN \"{user}\" \"{password}\""))
            .await
            .map(|_| ())
    }

    /// One response line; a line announcing a literal continues after it.
    async fn line(&mut self) -> anyhow::Result<String> {
        let mut buf = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.conn.read_until(b'\n', &mut line).await? == 0 {
                bail!("connection closed");
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            buf.extend_from_slice(text.as_bytes());
            if let Some(open) = text.rfind('{')
                && text.ends_with('}')
                && let Ok(n) = text[open + 1..text.len() - 1].parse::<usize>()
            {
                let mut literal = vec![0; n];
                self.conn.read_exact(&mut literal).await?;
                continue;
            }
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("b{}", self.tag)
    }

    /// Sends a command and waits for its tagged OK (anything else is an error).
    pub(super) async fn command(&mut self, command: &str) -> anyhow::Result<Answer> {
        let tag = self.next_tag();
        self.conn
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        self.answer(&tag, command).await
    }

    async fn answer(&mut self, tag: &str, command: &str) -> anyhow::Result<Answer> {
        let mut answer = Answer::default();
        let prefix = format!("{tag} ");
        loop {
            let line = self.line().await?;
            if let Some(rest) = line.strip_prefix(&prefix) {
                if rest.starts_with("OK") {
                    answer.done = rest.to_string();
                    return Ok(answer);
                }
                bail!("{command}: {rest}");
            }
            answer.untagged.push(line);
        }
    }

    /// Sends IDLE and waits for the continuation.
    pub(super) async fn start_idle(&mut self) -> anyhow::Result<()> {
        let tag = self.next_tag();
        self.conn
            .get_mut()
            .write_all(format!("{tag} IDLE\r\n").as_bytes())
            .await?;
        let cont = self.line().await?;
        if !cont.starts_with('+') {
            bail!("IDLE refused: {cont}");
        }
        Ok(())
    }

    /// APPENDs `message` to `folder` (non-synchronising literal).
    pub(super) async fn append(&mut self, folder: &str, message: &[u8]) -> anyhow::Result<Answer> {
        let tag = self.next_tag();
        let mut bytes = format!("{tag} APPEND {folder} {{{}+}}\r\n", message.len()).into_bytes();
        bytes.extend_from_slice(message);
        bytes.extend_from_slice(b"\r\n");
        self.conn.get_mut().write_all(&bytes).await?;
        self.answer(&tag, "APPEND").await
    }

    /// APPENDs messages `start..start + count` to INBOX, pipelined.
    pub(super) async fn append_many(&mut self, count: usize, start: usize) -> anyhow::Result<()> {
        let mut batch = Vec::new();
        let mut tags = Vec::new();
        for i in start..start + count {
            let msg = message(i);
            let tag = self.next_tag();
            batch
                .extend_from_slice(format!("{tag} APPEND INBOX {{{}+}}\r\n", msg.len()).as_bytes());
            batch.extend_from_slice(&msg);
            batch.extend_from_slice(b"\r\n");
            tags.push(tag);
        }
        self.conn.get_mut().write_all(&batch).await?;
        for tag in tags {
            self.answer(&tag, "APPEND").await?;
        }
        Ok(())
    }
}

/// The benchmark's message number `i` (a short report, as professionals exchange).
pub(super) fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Dr Marie Curie <marie.curie@hopital-a.mes.test>\r\nTo: Dr Jean Dupont <jean.dupont@hopital-a.mes.test>\r\n\
         Subject: Compte rendu {i}\r\nDate: Tue, 24 Nov 2026 10:00:00 +0100\r\nMessage-ID: <bench-{i}@mes.test>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Bonjour,\r\nVoici le compte rendu numero {i}.\r\nBien cordialement.\r\n"
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::Answer;

    #[test]
    fn answers_are_read() {
        let a = Answer {
            untagged: vec!["* 12 EXISTS".into(), "* 0 RECENT".into()],
            done: "OK [APPENDUID 1700000000 4242] APPEND completed".into(),
        };
        assert_eq!(a.count("EXISTS"), Some(12));
        assert_eq!(a.count("RECENT"), Some(0));
        assert_eq!(a.count("EXPUNGE"), None);
        assert_eq!(a.append_uid(), Some(4242));
    }
}
