//! Shutdown as a named concept: one trigger, any number of listeners.

use tokio::sync::watch;

/// Asks a role's Supervisor to drain its actors in order; resolves when they are drained.
#[derive(actix::Message)]
#[rtype(result = "()")]
pub struct Stop;

/// Listens for the stop of the process; loops select on [`Shutdown::wait`].
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Starts the shutdown that every [`Shutdown`] listener waits for.
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves once shutdown has started, at once if it already has.
    pub async fn wait(&mut self) {
        // An error means every trigger is gone, which only happens when the process ends.
        let _ = self.receiver.wait_for(|stopping| *stopping).await;
    }
}

/// The process's SIGINT and SIGTERM handlers, installed once at start so that a signal
/// that arrives during start-up is not lost to the default action, which kills at once.
pub struct TerminationSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl TerminationSignals {
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self { terminate: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
    }

    /// Resolve on the next SIGINT or SIGTERM with the signal's name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}
