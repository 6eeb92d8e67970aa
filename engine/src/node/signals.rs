//! SIGINT and SIGTERM trigger a graceful shutdown; a second SIGINT/SIGTERM while the first is
//! being handled exits at once (an operator pressing Ctrl-C twice means it).

use super::Shutdown;

/// Makes SIGINT and SIGTERM trigger `shutdown` (the node then stops cleanly and [`super::run`]
/// returns). A second signal of either kind exits the process at once with status 1. Call once,
/// from the binary, before [`super::run`]. Failing to install a handler is logged, not fatal:
/// the node still runs, it just cannot stop gracefully on that signal.
pub fn install_signal_handlers(shutdown: &Shutdown) {
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal set it.
        let second =
            signal_hook::flag::register_conditional_shutdown(signal, 1, shutdown.requested.clone());
        let first = signal_hook::flag::register(signal, shutdown.requested.clone());
        if let Err(error) = second.and(first) {
            tracing::error!(signal, %error, "could not install the signal handler; this signal will not stop the node gracefully");
        }
    }
}
