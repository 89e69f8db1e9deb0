//! The command `seaport register` supervises: started so that it never outlives us.
//!
//! The child leads its own process group, so a terminal's Ctrl-C reaches only the
//! supervisor, which forwards it exactly once to the whole group. Its stdin is
//! `/dev/null` (a background process group reading the terminal would be stopped).
//! On Linux the child also asks the kernel for SIGKILL when its parent dies, which
//! covers a SIGKILLed supervisor; that needs one `unsafe` call, below.

use std::io;
use std::process::{ExitStatus, Stdio};

use rustix::process::{Pid, Signal};

/// A running child process.
pub struct Child {
    inner: async_process::Child,
    pid: Pid,
}

impl Child {
    /// Starts `command[0]` with the rest of `command` and then `port` as arguments, and
    /// `PORT` set in its environment.
    ///
    /// Call this from the thread that lives as long as the process (the main thread):
    /// Linux sends the parent-death signal when the *thread* that forked exits.
    ///
    /// # Errors
    /// When the program cannot be started (not found, not executable).
    pub fn spawn(command: &[String], port: u16) -> io::Result<Child> {
        let (program, args) = command.split_first().ok_or_else(|| io::Error::other("no command given"))?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(args).arg(port.to_string()).env("PORT", port.to_string()).stdin(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        die_with_parent(&mut cmd);
        let inner = async_process::Command::from(cmd).kill_on_drop(true).spawn()?;
        let pid = i32::try_from(inner.id()).ok().and_then(Pid::from_raw).ok_or_else(|| io::Error::other("bad pid"))?;
        Ok(Child { inner, pid })
    }

    /// The child's process id.
    pub fn id(&self) -> i32 {
        self.pid.as_raw_nonzero().get()
    }

    /// Waits for the child to exit. Cancel-safe: call it again after dropping it.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        self.inner.status().await
    }

    /// Sends SIGINT or SIGTERM (as received) to the child's process group.
    pub fn forward(&self, signal: async_signal::Signal) {
        let signal = match signal {
            async_signal::Signal::Int => Signal::INT,
            _ => Signal::TERM,
        };
        self.send(signal);
    }

    /// Sends SIGKILL to the child's process group.
    pub fn kill(&self) {
        self.send(Signal::KILL);
    }

    fn send(&self, signal: Signal) {
        // The group is gone if every member has exited: nothing to do then.
        if let Err(e) = rustix::process::kill_process_group(self.pid, signal) {
            tracing::debug!(pid = self.id(), error = %e, "cannot signal the command's process group");
        }
    }
}

/// Makes the kernel SIGKILL the child when this process dies, however it dies.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;

    let parent = rustix::process::getpid();
    let hook = move || -> io::Result<()> {
        rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
        // The parent may have died between fork and prctl: then nothing will kill us.
        if rustix::process::getppid() != Some(parent) {
            return Err(rustix::io::Errno::SRCH.into());
        }
        Ok(())
    };
    // SAFETY: `pre_exec` runs the hook in the forked child, where only async-signal-safe
    // work is allowed. The hook makes two plain system calls (prctl, getppid) through
    // rustix, touches no lock and allocates nothing: the error path converts an errno
    // into an `io::Error` by value (`from_raw_os_error`), without boxing.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Elsewhere there is no parent-death signal: the supervisor's own signal handling
/// (forwarding SIGINT/SIGTERM, kill on drop) is all there is.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut std::process::Command) {}
