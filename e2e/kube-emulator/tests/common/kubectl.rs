//! The real kubectl (/usr/bin/kubectl) against a served emulator, with a HOME of its own
//! (kubectl caches discovery under $HOME/.kube/cache).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use kube_emulator::{Emulator, Server};

pub const KUBECTL: &str = "/usr/bin/kubectl";

pub struct Env {
    pub em: Server,
    pub home: tempfile::TempDir,
    pub kubeconfig: PathBuf,
}

pub struct Out {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub async fn start() -> Self {
        Self::serving(Emulator::start()).await
    }

    /// kubectl against `emulator`, served over HTTPS as the admin.
    pub async fn serving(emulator: Emulator) -> Self {
        let em = emulator.serve("127.0.0.1:0").await.expect("start emulator");
        let home = tempfile::tempdir().expect("home");
        let kubeconfig = home.path().join("kubeconfig");
        em.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Self { em, home, kubeconfig }
    }

    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.home.path().join(name);
        std::fs::write(&p, text).expect("write manifest");
        p.display().to_string()
    }

    /// Runs kubectl off the async runtime so the in-process server keeps serving.
    pub async fn run(&self, args: &[&str]) -> Out {
        self.run_with(&self.kubeconfig, args).await
    }

    /// Runs kubectl with another kubeconfig (e.g. a ServiceAccount's token).
    pub async fn run_with(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Out {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let home = self.home.path().to_path_buf();
        let kc = kubeconfig.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let out = Command::new(KUBECTL)
                .args(&args)
                .env("HOME", &home)
                .env("KUBECONFIG", &kc)
                .stdin(Stdio::null())
                .output()
                .expect("run kubectl");
            Out {
                ok: out.status.success(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .await
        .expect("join")
    }

    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.ok, "kubectl {args:?} failed: {}{}", out.stdout, out.stderr);
        out.stdout
    }
}
