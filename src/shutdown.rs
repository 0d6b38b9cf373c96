//! Shutdown as a named concept: one trigger, any number of listeners.

use tokio::sync::watch;

/// Listens for the stop of the process; loops select on [`Shutdown::wait`].
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// Starts the shutdown that every [`Shutdown`] listener sees.
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

/// Resolves on SIGINT or SIGTERM.
pub async fn termination_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};

    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    Ok(name)
}
