//! Real SSH servers for the tests: an OpenSSH sshd (and dropbear) on 127.0.0.1 at a free
//! high port, with a generated host key, its own config and log. Client keys (ed25519,
//! ecdsa, rsa) are generated once per test binary. Servers are stopped by PID on drop.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::TempDir;

/// Client keys shared by every server of this test binary.
pub struct Keys {
    pub dir: PathBuf,
}

impl Keys {
    pub fn get() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let dir = keys_dir();
            // Removed when the test binary exits (libtest's main returns or calls exit).
            // SAFETY: registering a plain function with no preconditions.
            unsafe {
                libc::atexit(remove_keys);
            }
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("key dir");
            let mut auth = String::new();
            for (name, kind, bits) in [
                ("id_ed25519", "ed25519", None),
                ("id_ecdsa", "ecdsa", Some("256")),
                ("id_rsa", "rsa", Some("2048")),
                ("wrong_ed25519", "ed25519", None),
                ("enc_ed25519", "ed25519", None),
            ] {
                let passphrase = if name == "enc_ed25519" {
                    ENC_PASSPHRASE
                } else {
                    ""
                };
                keygen_with(&dir.join(name), kind, bits, passphrase);
                if name != "wrong_ed25519" {
                    auth +=
                        &std::fs::read_to_string(dir.join(format!("{name}.pub"))).expect("pub key");
                }
            }
            std::fs::write(dir.join("authorized_keys"), auth).expect("authorized_keys");
            Keys { dir }
        })
    }

    pub fn key(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

fn keys_dir() -> PathBuf {
    std::env::temp_dir().join(format!("nexus-test-keys-{}", std::process::id()))
}

extern "C" fn remove_keys() {
    let _ = std::fs::remove_dir_all(keys_dir());
}

/// The passphrase of the encrypted test key `enc_ed25519`.
pub const ENC_PASSPHRASE: &str = "correct horse";

pub fn keygen(path: &Path, kind: &str, bits: Option<&str>) {
    keygen_with(path, kind, bits, "")
}

fn keygen_with(path: &Path, kind: &str, bits: Option<&str>, passphrase: &str) {
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-t", kind, "-N", passphrase, "-C", "nexus-test", "-f"])
        .arg(path);
    if let Some(b) = bits {
        c.args(["-b", b]);
    }
    let st = c
        .status()
        .expect("ssh-keygen (install openssh-client: make deps)");
    assert!(st.success(), "ssh-keygen failed for {}", path.display());
}

/// The SHA-256 fingerprint (`SHA256:...`, as ssh and nexus print it) of a public key
/// file.
pub fn fingerprint(pub_file: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(pub_file)
        .output()
        .expect("ssh-keygen -l");
    assert!(
        out.status.success(),
        "ssh-keygen -l {}: {out:?}",
        pub_file.display()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|w| w.starts_with("SHA256:"))
        .unwrap_or_else(|| panic!("no fingerprint in `{text}`"))
        .to_string()
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

fn wait_for_port(port: u16, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "ssh server exited ({st}) before listening; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "ssh server did not listen on {port} within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct Server {
    pub port: u16,
    pub dir: TempDir,
    child: Child,
    /// `ssh-ed25519 AAAA...` of the server.
    pub host_key: String,
    pub log: PathBuf,
}

impl Server {
    /// An OpenSSH sshd accepting the shared client keys. It runs as the user running the
    /// suite, so only that user (`common::user()`) can log in: root when run as root.
    pub fn openssh() -> Server {
        Self::openssh_with("")
    }

    /// Same, with extra sshd_config lines.
    pub fn openssh_with(extra: &str) -> Server {
        Self::openssh_logging("VERBOSE", extra)
    }

    /// Same, logging at `level` (sshd takes the first LogLevel line, so it cannot come
    /// in `extra`): at DEBUG, each exec request is logged (`request exec`).
    pub fn openssh_logging(level: &str, extra: &str) -> Server {
        let keys = Keys::get();
        let dir = TempDir::new("sshd");
        let d = dir.path();
        keygen(&d.join("host_ed25519"), "ed25519", None);
        let port = free_port();
        let log = d.join("sshd.log");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {k}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             {startups}MaxSessions 100\nLogLevel {level}\nSetEnv SHLVL=1\n{extra}\n",
            d = d.display(),
            k = keys.dir.display(),
            // sshd takes the first value: a test's own MaxStartups replaces the default.
            startups = if extra.contains("MaxStartups") { "" } else { "MaxStartups 500\n" },
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let _ = std::fs::create_dir_all("/run/sshd");
        let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sshd is not installed: run `make deps` (apt-get install openssh-server)");
        let mut child = Command::new(sshd)
            .args(["-D", "-f"])
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        wait_for_port(port, &mut child, &log);
        let host_key = std::fs::read_to_string(d.join("host_ed25519.pub")).expect("host key");
        let host_key = host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        Server {
            port,
            dir,
            child,
            host_key,
            log,
        }
    }

    /// A dropbear server; logins as `user`, whose authorized_keys the caller prepared.
    pub fn dropbear() -> Server {
        let dir = TempDir::new("dropbear");
        let d = dir.path();
        let key = d.join("host_ed25519");
        let st = Command::new("dropbearkey")
            .args(["-t", "ed25519", "-f"])
            .arg(&key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("dropbearkey is not installed: run `make deps` (apt-get install dropbear-bin)");
        assert!(st.success());
        let out = Command::new("dropbearkey")
            .arg("-y")
            .arg("-f")
            .arg(&key)
            .output()
            .expect("dropbearkey -y");
        let text = String::from_utf8_lossy(&out.stdout);
        let host_key = text
            .lines()
            .find(|l| l.starts_with("ssh-"))
            .expect("dropbear public key")
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let port = free_port();
        let log = d.join("dropbear.log");
        let logf = std::fs::File::create(&log).expect("log");
        // In /usr/sbin, which a normal user's PATH often lacks.
        let dropbear = ["/usr/sbin/dropbear", "/usr/bin/dropbear"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("dropbear is not installed: run `make deps` (apt-get install dropbear-bin)");
        let mut child = Command::new(dropbear)
            .args(["-F", "-E", "-s", "-p"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-r")
            .arg(&key)
            .arg("-P")
            .arg(d.join("dropbear.pid"))
            .stdin(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start dropbear");
        wait_for_port(port, &mut child, &log);
        Server {
            port,
            dir,
            child,
            host_key,
            log,
        }
    }

    /// A known_hosts file that knows this server.
    pub fn known_hosts(&self) -> PathBuf {
        let p = self.dir.path().join("known_hosts");
        std::fs::write(&p, format!("[127.0.0.1]:{} {}\n", self.port, self.host_key))
            .expect("known_hosts");
        p
    }

    /// The fingerprint of the server's ed25519 host key (`SHA256:...`).
    pub fn fingerprint(&self) -> String {
        let p = self.dir.path().join("host_key_for_fingerprint.pub");
        std::fs::write(&p, format!("{}\n", self.host_key)).expect("host key file");
        fingerprint(&p)
    }

    /// Lines of the server log containing `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: signalling the server process we started, by its PID.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}
