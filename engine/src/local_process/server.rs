//! One server child process that logs to a file and never outlives its launcher.
//!
//! Three safeguards keep that promise: `Drop` kills the child if it still runs (error paths,
//! panics); the child is in its own process group, so a Ctrl-C at the terminal reaches only the
//! launcher, which then shuts its servers down itself; and the child asks the kernel for SIGKILL
//! when its parent dies (PR_SET_PDEATHSIG), which covers the launcher being killed outright.
//!
//! The parent-death signal follows the *thread* that spawned the child, not the process: start
//! (and restart) servers from a thread that lives as long as they should.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How often a wait for exits looks at the children again.
const EXIT_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Most bytes of a log read for an error message.
const LOG_TAIL_BYTES_MAX: u64 = 2048;
/// Most lines of a log shown in an error message.
const LOG_TAIL_LINES_MAX: usize = 10;

/// One server child: its command (kept, so it can be started again after a kill), its log
/// file, and the running process if any.
pub struct ServerProcess {
    /// How messages name it ("node 1", "etcd member n2").
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    log_path: PathBuf,
    /// `None` when not started or once reaped.
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts `program args` with stdin closed and stdout and stderr appended to `log_path`
    /// (created if missing; a restart appends to the same file).
    pub fn start(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: Vec<OsString>,
        log_path: impl Into<PathBuf>,
    ) -> Result<ServerProcess, String> {
        let mut process = ServerProcess {
            name: name.into(),
            program: program.into(),
            args,
            log_path: log_path.into(),
            child: None,
        };
        process.spawn()?;
        Ok(process)
    }

    /// Starts it again with the same command and log file (after [`Self::kill`] or an exit).
    pub fn restart(&mut self) -> Result<(), String> {
        self.reap_if_exited();
        if self.child.is_some() {
            return Err(format!("{} is still running: kill it first", self.name));
        }
        self.spawn()
    }

    /// Replaces the arguments used by the next [`Self::restart`] (a server that must be told
    /// on restart that it rejoins, say).
    pub fn set_args(&mut self, args: Vec<OsString>) {
        self.args = args;
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|error| format!("cannot open {}: {error}", self.log_path.display()))?;
        let log_copy = log
            .try_clone()
            .map_err(|error| format!("cannot open {}: {error}", self.log_path.display()))?;
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log_copy)
            .stderr(log)
            .process_group(0);
        // SAFETY: the closure runs in the child between fork and exec and only calls prctl,
        // which is async-signal-safe; it allocates nothing and takes no lock.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().map_err(|error| {
            format!(
                "cannot start {} ({}): {error}",
                self.name,
                self.program.display()
            )
        })?;
        self.child = Some(child);
        Ok(())
    }

    /// How messages name it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id while it runs (or has exited but was not reaped yet).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether it was started and not reaped since (see [`Self::check_running`]).
    pub fn is_started(&self) -> bool {
        self.child.is_some()
    }

    fn reap_if_exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// An error with its exit status and its log's tail if it was started and has exited
    /// since (it is reaped then); Ok if it runs or was not meant to (killed, never started).
    pub fn check_running(&mut self) -> Result<(), String> {
        match self.reap_if_exited() {
            None => Ok(()),
            Some(status) => Err(format!(
                "{} exited unexpectedly ({status}); its log {} ends with:\n{}",
                self.name,
                self.log_path.display(),
                log_tail(&self.log_path)
            )),
        }
    }

    /// SIGKILL (no chance to clean up: a crash), then reaps it.
    pub fn kill(&mut self) -> Result<(), String> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| format!("{} is not running", self.name))?;
        child
            .kill()
            .map_err(|error| format!("cannot kill {}: {error}", self.name))?;
        child
            .wait()
            .map_err(|error| format!("cannot reap {}: {error}", self.name))?;
        Ok(())
    }

    /// Sends `signal` to it if it runs (by its own PID: never to anything else).
    pub fn signal(&self, signal: libc::c_int) {
        if let Some(child) = &self.child {
            send_signal(child, signal);
        }
    }

    /// The command that starts it, quoted for a POSIX shell.
    pub fn command_line(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// SIGTERM to every running server, then waits up to `grace` for all of them; one still
/// running then gets SIGKILL. Returns, per server that was running (in order), its name and
/// its exit status or what went wrong.
pub fn terminate_all<'a>(
    servers: impl IntoIterator<Item = &'a mut ServerProcess>,
    grace: Duration,
) -> Vec<(String, Result<ExitStatus, String>)> {
    let servers: Vec<&mut ServerProcess> = servers
        .into_iter()
        .filter(|server| server.child.is_some())
        .collect();
    for server in &servers {
        server.signal(libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    let mut outcomes = Vec::with_capacity(servers.len());
    for server in servers {
        let Some(mut child) = server.child.take() else {
            continue;
        };
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(EXIT_POLL_INTERVAL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!(
                        "did not exit within {} ms of SIGTERM; killed (log: {})",
                        grace.as_millis(),
                        server.log_path.display()
                    ));
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("cannot wait for it: {error}; killed"));
                }
            }
        };
        outcomes.push((server.name.clone(), outcome));
    }
    outcomes
}

/// Sends `signal` to this child (by its own PID: never to anything else).
fn send_signal(child: &Child, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with the PID of a child we have not reaped yet (so the PID cannot
        // have been reused); no memory is involved.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// The last lines of a log file (at most 2 KiB, 10 lines), indented, for error messages.
pub fn log_tail(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let length = file.metadata().map(|meta| meta.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(length.saturating_sub(LOG_TAIL_BYTES_MAX)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "    (empty)".to_string();
    }
    let start = lines.len().saturating_sub(LOG_TAIL_LINES_MAX);
    lines[start..]
        .iter()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `word` as-is when a shell would read it back unchanged, else in single quotes.
fn shell_quote(word: &OsStr) -> String {
    let text = word.to_string_lossy();
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
    if plain {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_keeps_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote(OsStr::new("--id")), "--id");
        assert_eq!(
            shell_quote(OsStr::new("1=127.0.0.1:7001,2=x")),
            "1=127.0.0.1:7001,2=x"
        );
        assert_eq!(shell_quote(OsStr::new("a b")), "'a b'");
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
    }

    #[test]
    fn a_server_is_killed_restarted_and_reports_its_exit() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let args = vec![OsString::from("30")];
        let mut server = ServerProcess::start("sleeper", "sleep", args, &log).unwrap();
        let first = server.pid().unwrap();
        server.check_running().unwrap();
        server.kill().unwrap();
        assert_eq!(server.pid(), None);
        assert!(
            server.kill().is_err(),
            "a second kill must say it is not running"
        );
        server.restart().unwrap();
        assert_ne!(server.pid(), Some(first));
        let outcomes = terminate_all([&mut server], Duration::from_secs(5));
        assert_eq!(outcomes.len(), 1);
        assert!(outcomes[0].1.is_ok(), "{outcomes:?}");

        server.set_args(vec![OsString::from("--no-such-flag")]);
        server.restart().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let error = loop {
            match server.check_running() {
                Err(error) => break error,
                Ok(()) if Instant::now() < deadline => std::thread::sleep(EXIT_POLL_INTERVAL),
                Ok(()) => panic!("sleep with a bad flag did not exit"),
            }
        };
        assert!(error.contains("sleeper exited unexpectedly"), "{error}");
        assert!(
            !error.contains("(empty)"),
            "the log tail is missing: {error}"
        );
    }
}
