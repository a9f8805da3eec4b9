//! A real SMTP server for tests: speaks enough ESMTP for lettre (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT),
//! keeps every received message, and can be stopped and restarted on the same port. Recipients registered with
//! [`SmtpSink::reject_rcpt`] are refused at `RCPT TO` with a permanent reply, as a real server refuses an
//! unknown mailbox.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    task::JoinHandle,
};

type Rejections = Arc<Mutex<Vec<(String, String)>>>;

/// Withholding the `250` after `DATA`: armed by [`SmtpSink::hold_next`], counted when a message is held.
#[derive(Default)]
struct Hold {
    next: AtomicBool,
    held: AtomicUsize,
}

pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<String>>>,
    rejections: Rejections,
    hold: Arc<Hold>,
    task: Option<JoinHandle<()>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_on(0, Arc::default(), Arc::default(), Arc::default()).await
    }

    /// Withholds the reply to the next message's `DATA`: the client waits for a `250` that never comes. A
    /// message whose connection drops while held is discarded, as a real server discards an unfinished
    /// transaction.
    pub fn hold_next(&self) {
        self.hold.next.store(true, Ordering::SeqCst);
    }

    /// How many messages were held so far.
    pub fn held(&self) -> usize {
        self.hold.held.load(Ordering::SeqCst)
    }

    /// Refuses `RCPT TO:<address>` with `reply` (e.g. `550 5.1.1 no such user`) from now on.
    pub fn reject_rcpt(&self, address: &str, reply: &str) {
        self.rejections
            .lock()
            .unwrap()
            .push((address.to_ascii_lowercase(), reply.to_owned()));
    }

    async fn start_on(
        port: u16,
        messages: Arc<Mutex<Vec<String>>>,
        rejections: Rejections,
        hold: Arc<Hold>,
    ) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind smtp sink");
        let port = listener.local_addr().unwrap().port();
        let store = messages.clone();
        let refused = rejections.clone();
        let holding = hold.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let store = store.clone();
                let refused = refused.clone();
                let holding = holding.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    let _ = w.write_all(b"220 sink ESMTP ready\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let cmd = line.to_ascii_uppercase();
                        if cmd.starts_with("RCPT") {
                            let lower = line.to_ascii_lowercase();
                            let refusal = refused
                                .lock()
                                .unwrap()
                                .iter()
                                .find(|(a, _)| lower.contains(&format!("<{a}>")))
                                .map(|(_, r)| r.clone());
                            if let Some(r) = refusal {
                                if w.write_all(format!("{r}\r\n").as_bytes()).await.is_err() {
                                    return;
                                }
                                continue;
                            }
                        }
                        let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if cmd.starts_with("DATA") {
                            let _ = w.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
                            let mut body = String::new();
                            while let Ok(Some(l)) = lines.next_line().await {
                                if l == "." {
                                    break;
                                }
                                body.push_str(l.strip_prefix('.').unwrap_or(&l));
                                body.push('\n');
                            }
                            if holding.next.swap(false, Ordering::SeqCst) {
                                holding.held.fetch_add(1, Ordering::SeqCst);
                                // No reply; drop the message when the client goes away.
                                while let Ok(Some(_)) = lines.next_line().await {}
                                return;
                            }
                            store.lock().unwrap().push(body);
                            b"250 queued\r\n"
                        } else if cmd.starts_with("QUIT") {
                            let _ = w.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Self {
            port,
            messages,
            rejections,
            hold,
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops accepting connections (an outage).
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    /// Starts again on the same port, keeping the received messages.
    pub async fn restart(&mut self) {
        self.stop();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut again = Self::start_on(
            self.port,
            self.messages.clone(),
            self.rejections.clone(),
            self.hold.clone(),
        )
        .await;
        self.task = again.task.take();
    }

    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// Messages to `to`, waiting until at least `n` arrived.
    pub async fn wait_for(&self, to: &str, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<String> = self
                .messages()
                .into_iter()
                .filter(|m| m.contains(&format!("To: {to}")))
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} message(s) to {to}, got {}: {:?}",
                found.len(),
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl SmtpSink {
    /// The first message to `to` whose unfolded text (quoted-printable soft breaks undone) contains every one
    /// of `needles`, waiting for it up to `timeout`.
    pub async fn wait_for_text(&self, to: &str, needles: &[&str], timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.messages().into_iter().find(|m| {
                let flat = m.replace("=\r\n", "").replace("=\n", "");
                m.contains(&format!("To: {to}")) && needles.iter().all(|n| flat.contains(n))
            }) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "no message to {to} containing {needles:?}: {:?}",
                self.messages()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl SmtpSink {
    /// Waits until `n` messages to `to` contain `needle` (quoted-printable soft breaks undone); returns them.
    pub async fn wait_for_n_with(
        &self,
        to: &str,
        needle: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found: Vec<String> = self
                .messages()
                .into_iter()
                .filter(|m| {
                    m.contains(&format!("To: {to}"))
                        && m.replace("=\r\n", "").replace("=\n", "").contains(needle)
                })
                .collect();
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} message(s) to {to} with {needle:?}, got {}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The first link containing `path` in a message (quoted-printable soft line breaks undone).
pub fn link(message: &str, path: &str) -> String {
    let unfolded = message.replace("=\n", "").replace("=3D", "=");
    unfolded
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .find(|w| w.starts_with("http") && w.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in message:\n{message}"))
        .to_owned()
}

/// The `token` query parameter of a link.
pub fn token(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .expect("token in link")
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect()
}

/// The header fields of a raw message (folded lines joined), in order; names as written.
pub fn headers(message: &str) -> Vec<(String, String)> {
    let head = message.split("\n\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    out
}

/// The value of the header `name` (case-insensitive), if present once or more (the first).
pub fn header(message: &str, name: &str) -> Option<String> {
    headers(message)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A running app with workers whose mail goes to a new sink, with `JOB_RETRY_MAIL` set to `retry` (a relay
/// outage is waited out with these retries).
pub async fn app_with_retrying_mail(retry: &str) -> (crate::helpers::TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = crate::helpers::spawn_app_with(crate::helpers::Options {
        workers: true,
        env: vec![
            ("SMTP_URL", sink.url()),
            ("JOB_RETRY_MAIL", retry.to_owned()),
        ],
    })
    .await;
    (app, sink)
}
