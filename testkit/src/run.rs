//! Running a customersim binary as a user would: the core's `customersim`
//! (`env!("CARGO_BIN_EXE_customersim")`) or an out-of-tree one such as the custom-source example,
//! with none of the caller's settings.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// A command for the binary at `path` without any variable customersim reads
/// ([`customersim::env::known_variables`]), so a developer's shell never changes a test.
/// PATH and HOME are kept; stdin is empty; `HTTP_LISTEN` is an ephemeral port, since the built-in
/// pipeline serves HTTP on 127.0.0.1:8000 and tests running at once would collide there (a test
/// sets it again, or removes it, to check that default).
pub fn clean_command(path: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(path);
    for variable in customersim::env::known_variables() {
        command.env_remove(variable);
    }
    command.env("HTTP_LISTEN", "127.0.0.1:0");
    command.stdin(Stdio::null());
    command
}

/// Runs to the end and returns the output; panics with stderr if it did not exit 0.
pub fn run_ok(command: &mut Command) -> Output {
    let output = command.output().expect("the binary runs");
    assert!(
        output.status.success(),
        "exit {:?}\nstderr:\n{}",
        output.status,
        stderr_text(&output)
    );
    output
}

/// Runs to the end, asserts the exit code (showing stderr if it differs) and returns the output
/// with its stderr as text: the shape of every bad-input and refused-connection check.
pub fn run_failing(command: &mut Command, code: i32) -> (Output, String) {
    let output = command.output().expect("the binary runs");
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(code), "stderr:\n{stderr}");
    (output, stderr)
}

/// The output's stderr as text, for assertions and failure messages.
pub fn stderr_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Starts `command` with stdout and stderr piped, for a test that reads them itself.
pub fn spawn_piped(command: &mut Command) -> Child {
    command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// CPU seconds (user + system) used by the waited-for child processes so far: benchmarks
/// report a publisher's CPU next to its rate.
pub fn children_cpu() -> f64 {
    // SAFETY: getrusage fills the zeroed struct this function owns.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// Sends SIGTERM to a child (what Kubernetes and `docker stop` send).
pub fn terminate(child: &Child) {
    let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
    // SAFETY: kill(2) with a pid we own and a valid signal number has no memory effects.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// What becomes of a [`Process`]'s stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdoutMode {
    /// Read to the end by a thread; returned by [`Process::finish`].
    Collect,
    /// Sent line by line, with the time it was read, to [`Process::lines`].
    Lines,
    /// Piped but not read: once the pipe is full, the binary blocks writing to it.
    Unread,
    /// Thrown away (`/dev/null`): nothing in the test's process spends time on it.
    Discard,
}

/// A stdout line of a [`Process`] in [`StdoutMode::Lines`], and when the test read it.
#[derive(Clone, Debug)]
pub struct TimedLine {
    /// Wall-clock time at which the line was read.
    pub read_at: SystemTime,
    /// The line, without its newline.
    pub text: String,
}

/// A binary running beside the test; killed when dropped, so a failing test leaves nothing
/// running. Stderr is always read by a thread, so a chatty binary never blocks on a full pipe,
/// and what it printed so far can be waited for ([`Process::wait_for_stderr`]).
pub struct Process {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    lines: Option<mpsc::Receiver<TimedLine>>,
    stderr: Option<JoinHandle<()>>,
    stderr_so_far: Arc<Mutex<Vec<u8>>>,
}

/// How a [`Process`] ended and everything it printed.
#[derive(Debug)]
pub struct Finished {
    /// The exit status.
    pub status: ExitStatus,
    /// Stdout (empty unless collected).
    pub stdout: Vec<u8>,
    /// Stderr as text.
    pub stderr: String,
}

impl Process {
    /// Starts `command` with stdout handled as `mode`.
    pub fn start(command: &mut Command, mode: StdoutMode) -> Process {
        let stdout = match mode {
            StdoutMode::Discard => Stdio::null(),
            _ => Stdio::piped(),
        };
        let mut child = command
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr_so_far = Arc::new(Mutex::new(Vec::new()));
        let stderr = Some(append_all(
            child.stderr.take().expect("piped stderr"),
            Arc::clone(&stderr_so_far),
        ));
        let (stdout, lines) = match (mode, child.stdout.take()) {
            (StdoutMode::Collect, Some(stdout)) => (Some(read_to_end(stdout)), None),
            (StdoutMode::Lines, Some(stdout)) => (None, Some(send_lines(stdout))),
            (_, stdout) => {
                child.stdout = stdout;
                (None, None)
            }
        };
        Process {
            child,
            stdout,
            lines,
            stderr,
            stderr_so_far,
        }
    }

    /// Waits until stderr contains `text`, for at most `limit`; false if it did not by then.
    /// Lets a test wait for a state only the log shows instead of sleeping and hoping.
    pub fn wait_for_stderr(&self, text: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let printed = self.stderr_so_far.lock().expect("stderr buffer");
            if String::from_utf8_lossy(&printed).contains(text) {
                return true;
            }
            drop(printed);
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child process, e.g. to SIGKILL it or take an unread stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The stdout lines read so far ([`StdoutMode::Lines`] only).
    pub fn lines(&self) -> &mpsc::Receiver<TimedLine> {
        self.lines
            .as_ref()
            .expect("the process was started with StdoutMode::Lines")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        terminate(&self.child);
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("query the child").is_none()
    }

    /// Waits for the exit, for at most `limit`; panics if it takes longer.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("query the child") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the binary did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit (without a signal) and returns what it printed.
    pub fn finish(mut self) -> Finished {
        let status = self.child.wait().expect("wait for the child");
        let stdout = self
            .stdout
            .take()
            .map(|reader| reader.join().expect("the stdout reader"))
            .unwrap_or_default();
        if let Some(reader) = self.stderr.take() {
            reader.join().expect("the stderr reader");
        }
        let stderr = std::mem::take(&mut *self.stderr_so_far.lock().expect("stderr buffer"));
        Finished {
            status,
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    /// SIGTERM, then [`Process::finish`].
    pub fn stop(self) -> Finished {
        self.terminate();
        self.finish()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_to_end(mut from: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = from.read_to_end(&mut all);
        all
    })
}

fn append_all(mut from: impl Read + Send + 'static, to: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match from.read(&mut chunk) {
                Ok(0) => return,
                Ok(read) => to
                    .lock()
                    .expect("stderr buffer")
                    .extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    })
}

fn send_lines(from: impl Read + Send + 'static) -> mpsc::Receiver<TimedLine> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(text) = line else { break };
            let read_at = SystemTime::now();
            if sender.send(TimedLine { read_at, text }).is_err() {
                break;
            }
        }
    });
    receiver
}
