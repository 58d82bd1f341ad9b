//! Test support: a moto server of the test's own, on a free port of 127.0.0.1, killed when
//! dropped. Tests that need the emulator fail (never skip) when it is missing: `scripts/test`
//! installs it into the project's virtualenv.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

/// The repository root: the parent of the test runner's `CARGO_MANIFEST_DIR` (every crate of the
/// workspace sits one level below the root). The runner's value comes first: cargo shares build
/// artifacts between clones of the workspace, so the path compiled in may be another clone's.
pub fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .expect("a workspace crate has a parent directory")
        .to_path_buf()
}

/// The emulator's executable: `RENDERFLEET_MOTO_BIN`, or the workspace's `.venv/bin/moto_server`.
pub fn moto_bin() -> PathBuf {
    std::env::var_os("RENDERFLEET_MOTO_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/moto_server"))
}

impl MotoServer {
    /// Starts moto and waits until it accepts connections.
    pub fn start() -> Self {
        let bin = moto_bin();
        assert!(
            bin.is_file(),
            "{} is missing: run scripts/test (it installs moto into .venv)",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto");
        let server = Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// An SDK configuration pointing at this server.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        crate::aws::emulator_config(&self.endpoint, "us-east-1").await
    }

    /// A jobs table (`renderfleet-test-jobs`) created on this server.
    pub async fn jobs_table(&self) -> crate::aws::DynamoStore {
        let store = crate::aws::DynamoStore::new(&self.sdk().await, "renderfleet-test-jobs");
        store.create_table().await.expect("creating the jobs table");
        store
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
