//! The repository's nginx configuration (`nginx/`), run for real with Debian's nginx in front of real
//! `vortex serve --no-worker` processes, checked over HTTPS with a throw-away CA.
//!
//! The configuration is templated only for what differs between a container and this machine: listen ports,
//! file paths (pid, logs, temp dirs, includes, ACME webroot), certificate locations, the upstream address,
//! the redirect's HTTPS port and the worker user. Every substitution must hit, so a renamed path in the repo
//! fails here instead of silently testing something else.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use uuid::Uuid;

use crate::helpers::{TestDb, base_env, free_port, vortex_bin};

mod https;
mod paper_sse;
mod rate_limits;
mod signals;
mod sse;
mod unsubscribe;
mod upstreams;

/// A running `vortex` process whose stdout (JSON log lines) is collected.
pub struct VortexProc {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<String>>>,
}

impl VortexProc {
    /// Starts `vortex <args>` with `env` (plus `LOG_FORMAT=json`). `serve` binds port 0 and the port is read
    /// from its "vortex listening" log line: no window in which another process could take a pre-picked port.
    pub async fn start(args: &[&str], env: &HashMap<String, String>) -> Self {
        let mut child = Command::new(vortex_bin())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vortex");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut proc = Self {
            child,
            port: 0,
            lines,
        };
        if args.first() == Some(&"serve") {
            let deadline = Instant::now() + Duration::from_secs(30);
            proc.port = loop {
                let port = proc
                    .logs()
                    .iter()
                    .find(|l| l["message"] == "vortex listening")
                    .and_then(|l| l["port"].as_u64());
                if let Some(port) = port {
                    break u16::try_from(port).unwrap();
                }
                assert!(
                    Instant::now() < deadline && matches!(proc.child.try_wait(), Ok(None)),
                    "vortex did not start:\n{}",
                    proc.lines.lock().unwrap().join("\n")
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            let health = reqwest::get(format!("http://127.0.0.1:{}/health", proc.port))
                .await
                .expect("/health");
            assert_eq!(health.status(), StatusCode::OK);
        }
        proc
    }

    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The app's `request` log line for `request_id`, waiting briefly for it to be written.
    pub async fn request_line(&self, request_id: &str) -> Option<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let found = self
                .logs()
                .into_iter()
                .find(|l| l["message"] == "request" && l["span"]["request_id"] == request_id);
            if found.is_some() || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn requests_logged(&self) -> usize {
        self.logs()
            .iter()
            .filter(|l| l["message"] == "request")
            .count()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for VortexProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `s` with `from` replaced; panics when the repo's file no longer contains `from`.
fn subst(s: &str, from: &str, to: &str) -> String {
    assert!(
        s.contains(from),
        "the nginx config no longer contains {from:?}: update the templating in server/tests/api/nginx/mod.rs"
    );
    s.replace(from, to)
}

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A throw-away CA and a server certificate for `localhost`/127.0.0.1 signed by it, in `dir`.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["req", "-x509"])
        .args(ec)
        .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
        .args(["-subj", "/CN=Vortex throw-away test CA"]));
    run(Command::new("openssl")
        .current_dir(dir)
        .args(["req"])
        .args(ec)
        .args(["-keyout", "privkey.pem", "-out", "server.csr"])
        .args(["-subj", "/CN=localhost"]));
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").current_dir(dir).args([
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "cert.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]));
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("fullchain.pem"), format!("{cert}{ca}")).unwrap();
    std::fs::write(dir.join("chain.pem"), ca).unwrap();
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Debian's nginx running the repo's configuration from a temporary prefix.
pub struct Nginx {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub https_port: u16,
    pub http_port: u16,
    ca_pem: Vec<u8>,
}

impl Nginx {
    pub fn start(upstreams: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        // Workers may run as another user; they need to traverse the prefix.
        run(Command::new("chmod").arg("755").arg(&d));
        for sub in ["conf.d", "snippets", "logs", "cache", "acme"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        make_certs(&d);
        let p = |s: &str| format!("{}/{s}", d.display());
        let nginx_dir = repo_root().join("nginx");
        let nginx = |extra: &[&str]| {
            let mut c = Command::new("/usr/sbin/nginx");
            c.args([
                "-e",
                &p("logs/startup.log"),
                "-p",
                &p(""),
                "-c",
                &p("nginx.conf"),
            ])
            .args(extra);
            c
        };
        let mut attempt = 0;
        let (child, https_port, http_port) = loop {
            attempt += 1;
            let (https_port, http_port) = (free_port(), free_port());

            let is_root =
                String::from_utf8_lossy(&run(Command::new("id").arg("-u")).stdout).trim() == "0";
            let main = std::fs::read_to_string(nginx_dir.join("nginx.conf")).unwrap();
            let main = subst(
                &main,
                "user nginx;",
                if is_root { "user root root;" } else { "" },
            );
            let main = subst(&main, "/var/run/nginx.pid", &p("nginx.pid"));
            let main = subst(&main, "/var/log/nginx/", &p("logs/"));
            let main = subst(&main, "/var/cache/nginx/", &p("cache/"));
            let main = subst(&main, "/etc/nginx/conf.d/", &p("conf.d/"));
            std::fs::write(d.join("nginx.conf"), main).unwrap();

            let site =
                std::fs::read_to_string(nginx_dir.join("templates/vortex.conf.template")).unwrap();
            let site = subst(&site, "/etc/letsencrypt/live/${VORTEX_DOMAIN}/", &p(""));
            let site = subst(&site, "${VORTEX_DOMAIN}", "localhost");
            let site = subst(&site, "listen 80", &format!("listen 127.0.0.1:{http_port}"));
            let site = subst(
                &site,
                "listen 443",
                &format!("listen 127.0.0.1:{https_port}"),
            );
            let servers: String = upstreams
                .iter()
                .map(|port| format!("server 127.0.0.1:{port} max_fails=3 fail_timeout=10s;\n    "))
                .collect();
            let site = subst(
                &site,
                "server web:3000 resolve max_fails=3 fail_timeout=10s;",
                servers.trim_end(),
            );
            let site = subst(&site, "/etc/nginx/snippets/", &p("snippets/"));
            let site = subst(&site, "/var/www/certbot", &p("acme"));
            let site = subst(
                &site,
                "https://$server_name$request_uri",
                &format!("https://$server_name:{https_port}$request_uri"),
            );
            std::fs::write(d.join("conf.d/vortex.conf"), site).unwrap();
            for entry in std::fs::read_dir(nginx_dir.join("snippets")).unwrap() {
                let entry = entry.unwrap();
                std::fs::copy(entry.path(), d.join("snippets").join(entry.file_name())).unwrap();
            }
            let test = nginx(&["-t"]).output().expect("nginx is installed");
            assert!(
                test.status.success(),
                "nginx -t refused the repo's configuration:\n{}",
                String::from_utf8_lossy(&test.stderr)
            );
            let _ = std::fs::remove_file(d.join("nginx.pid"));
            let mut child = nginx(&["-g", "daemon off;"])
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start nginx");
            // nginx writes its pid file only once every listening socket is bound; if another process took
            // one of the picked ports in the meantime, nginx exits and we try other ports.
            let deadline = Instant::now() + Duration::from_secs(10);
            let started = loop {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break false;
                }
                if d.join("nginx.pid").exists() {
                    break true;
                }
                assert!(Instant::now() < deadline, "nginx did not start");
                std::thread::sleep(Duration::from_millis(20));
            };
            if started {
                break (child, https_port, http_port);
            }
            assert!(
                attempt < 3,
                "nginx could not bind its ports:\n{}",
                std::fs::read_to_string(d.join("logs/error.log")).unwrap_or_default()
            );
        };
        let ca_pem = std::fs::read(d.join("ca.pem")).unwrap();
        Self {
            child: Some(child),
            dir,
            https_port,
            http_port,
            ca_pem,
        }
    }

    pub fn https(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.https_port)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.http_port)
    }

    /// A client that trusts only the throw-away CA, resolves `localhost` to 127.0.0.1 and connects from
    /// `from` (any 127.0.0.0/8 address is local on Linux).
    pub fn client_from(&self, from: &str) -> reqwest::Client {
        let ip: IpAddr = from.parse().unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca_pem).unwrap())
            .tls_built_in_root_certs(false)
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
            .local_address(ip)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
    }

    pub fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel)).unwrap_or_default()
    }

    /// `openssl s_client` against the HTTPS port; returns (success, stdout + stderr).
    pub fn s_client(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("openssl")
            .arg("s_client")
            .args(["-connect", &format!("127.0.0.1:{}", self.https_port)])
            .args(["-CAfile", &format!("{}/ca.pem", self.dir.path().display())])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("openssl is installed");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGTERM to the master makes it stop its workers too (SIGKILL would orphan them).
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A database, `replicas` × `vortex serve --no-worker` (as the prod web service runs) and nginx in front.
struct Stack {
    nginx: Nginx,
    apps: Vec<VortexProc>,
    /// The apps' environment (a test builds a `Ctx` on the same database from it).
    env: HashMap<String, String>,
    _site: tempfile::TempDir,
    _db: TestDb,
}

const CSS: &str = "body { font-family: system-ui, sans-serif; }\n";
const HASHED_JS: &str = "pkg/vortex.3f9a1c7be2d04a6f.js";

impl Stack {
    async fn start(replicas: usize) -> Self {
        Self::start_with(replicas, &[]).await
    }

    /// [`Stack::start`] with extra variables for the apps.
    async fn start_with(replicas: usize, extra: &[(&str, &str)]) -> Self {
        let db = TestDb::new().await;
        let site = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(site.path().join("pkg")).unwrap();
        std::fs::write(site.path().join("pkg/vortex.css"), CSS.repeat(100)).unwrap();
        std::fs::write(site.path().join(HASHED_JS), "export default 1;\n").unwrap();
        let mut env = base_env(&db, &format!("vortex-test-{}", Uuid::new_v4().simple()));
        env.insert("TRUSTED_PROXIES".into(), "127.0.0.1".into());
        env.insert("SITE_ROOT".into(), site.path().display().to_string());
        for (k, v) in extra {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        let mut apps = Vec::new();
        for _ in 0..replicas {
            apps.push(VortexProc::start(&["serve", "--no-worker"], &env).await);
        }
        let ports: Vec<u16> = apps.iter().map(|a| a.port).collect();
        let nginx = Nginx::start(&ports);
        Self {
            nginx,
            apps,
            env,
            _site: site,
            _db: db,
        }
    }

    async fn request_line(&self, request_id: &str) -> serde_json::Value {
        for app in &self.apps {
            if let Some(l) = app.request_line(request_id).await {
                return l;
            }
        }
        panic!("no app logged request {request_id}");
    }
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Vec<&'a str> {
    resp.headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}
