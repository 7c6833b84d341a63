//! A Postgres server of the test's own (initdb into a temporary directory,
//! on a free port) that the test may stop and start: restarting the shared
//! server would break every other test running beside it.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct OwnPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

/// The server binaries of the machine's Postgres (Debian keeps them per version).
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| Some(e.ok()?.path().join("bin"))).filter(|b| b.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().expect(
        "no /usr/lib/postgresql/*/bin/initdb: this test starts its own Postgres server and needs the \
         postgresql package, which scripts/services installs",
    )
}

/// Runs a server binary as the `postgres` user when we are root (initdb refuses root).
fn as_postgres(bin: &Path, args: &[&str]) -> Command {
    let mut cmd;
    if is_root() {
        cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin);
    } else {
        cmd = Command::new(bin);
    }
    cmd.args(args);
    cmd
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

impl OwnPostgres {
    pub fn start() -> OwnPostgres {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(ok.success(), "chown of the test's Postgres directory failed");
        }
        let data = dir.path().join("data");
        let out = as_postgres(&bin.join("initdb"), &["-D", data.to_str().unwrap(), "-A", "trust", "-U", "postgres"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        let pg = OwnPostgres { bin, dir, port: super::free_port() };
        pg.pg_ctl_start();
        pg
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.path().join("data");
        let mut all = vec!["-D", data.to_str().unwrap(), "-w", "-t", "30"];
        all.extend_from_slice(args);
        let out = as_postgres(&self.bin.join("pg_ctl"), &all).output().unwrap();
        assert!(out.status.success(), "pg_ctl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn pg_ctl_start(&self) {
        let opts =
            format!("-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off", self.port, self.dir.path().display());
        let log = self.dir.path().join("log");
        self.pg_ctl(&["-o", &opts, "-l", log.to_str().unwrap(), "start"]);
    }

    /// Stops the server (fast: open connections are cut), waits, starts it again.
    pub fn restart_after(&self, down: std::time::Duration) {
        self.pg_ctl(&["-m", "fast", "stop"]);
        std::thread::sleep(down);
        self.pg_ctl_start();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ =
            as_postgres(&self.bin.join("pg_ctl"), &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"]).output();
    }
}
