//! The `ponte` binary as a child process, with a clean environment and its own
//! working directory, outbox and port.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::brokers::{free_port, wait_for_port};

/// A running ponte. Killed (SIGKILL) when dropped, unless stopped before.
pub struct Ponte {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    env: Vec<(String, String)>,
    runs: u32,
}

impl Ponte {
    /// Starts ponte against `brokers` with a fresh outbox in `dir`, plus `env`.
    pub fn start(brokers: &str, dir: &Path, env: &[(&str, &str)]) -> Ponte {
        let mut all = vec![
            ("KAFKA_BROKERS".to_owned(), brokers.to_owned()),
            ("PONTE_BIND_ADDRESS".to_owned(), "127.0.0.1".to_owned()),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let mut ponte = Ponte {
            child: None,
            port: free_port(),
            dir: dir.to_owned(),
            env: all,
            runs: 0,
        };
        ponte.spawn();
        ponte
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let log = File::create(self.log_path()).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_ponte"))
            .arg("serve")
            .env_clear()
            .env("PORT", self.port.to_string())
            .env("PONTE_OUTBOX_PATH", self.dir.join("outbox.db"))
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ponte starts");
        self.child = Some(child);
        assert!(
            wait_for_port(self.port, Duration::from_secs(20)),
            "ponte listens; log:\n{}",
            self.log()
        );
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("ponte-{}.log", self.runs))
    }

    /// The process id of the current run.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("ponte is running").id()
    }

    /// What the current run wrote to stderr.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn outbox_path(&self) -> PathBuf {
        self.dir.join("outbox.db")
    }

    /// Kills the process with SIGKILL, as a crash or power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("ponte is running");
        let pid = child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "SIGTERM sent");
        child.wait().expect("ponte exits")
    }

    /// Starts ponte again on the same outbox, port and settings.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `POST /topics/{topic}` with the middleware body; returns status and JSON.
    pub async fn post(&self, topic: &str, key: Option<&str>, data: Value) -> (u16, Value) {
        let body = match key {
            Some(key) => serde_json::json!({ "key": key, "data": data }),
            None => serde_json::json!({ "data": data }),
        };
        self.post_raw(topic, "application/json", body.to_string())
            .await
    }

    /// `POST path` with a JSON body and extra headers; returns status, headers and JSON.
    pub async fn send(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut request = reqwest::Client::new().post(self.url(path)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("ponte answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.json().await.expect("JSON answer"))
    }

    /// `POST /topics/{topic}` with any content type and body.
    pub async fn post_raw(&self, topic: &str, content_type: &str, body: String) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.url(&format!("/topics/{topic}")))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("ponte answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    /// Sends `method path` with a body of `content_type` and extra headers;
    /// returns status, headers and the body as text.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = reqwest::Client::new()
            .request(method, self.url(path))
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("ponte answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, response.text().await.expect("body"))
    }

    /// `GET path`; returns status and JSON.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(self.url(path)).await.expect("ponte answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("JSON answer"))
    }

    /// Polls `/health` until `check` holds or `patience` passed; returns the last body.
    pub async fn health_until(&self, patience: Duration, check: impl Fn(&Value) -> bool) -> Value {
        self.get_until("/health", patience, check).await
    }

    /// Polls `path` until `check` holds on its body or `patience` passed; returns
    /// the last body. For state that follows Kafka's report by a commit, such as
    /// a record's row after its acknowledgement.
    pub async fn get_until(
        &self,
        path: &str,
        patience: Duration,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let (_, body) = self.get(path).await;
            if check(&body) || tokio::time::Instant::now() >= deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Ponte {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- ponte log ---\n{}", self.log());
        }
    }
}

/// Posts the middleware body to `url`; a connection failure (ponte killed
/// mid-request) is `None`.
pub async fn try_post(url: &str, key: &str, data: Value) -> Option<(u16, Value)> {
    let response = reqwest::Client::new()
        .post(url)
        .json(&serde_json::json!({ "key": key, "data": data }))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.ok()?))
}
