//! The runtime layer: every glommio-specific line of tern-net lives here.
//!
//! quinn is runtime-agnostic through [`quinn::Runtime`]: a timer, a way to spawn its driver
//! futures, and an async UDP socket. [`GlommioRuntime`] provides them on a glommio executor:
//! - timers are `async_io::Timer` (quinn implements its timer trait for it), because quinn needs
//!   `Send` timers and glommio's are not;
//! - `spawn` is `glommio::spawn_local`: quinn only spawns from its own drivers, which run on the
//!   executor that created the endpoint, so everything stays on one thread;
//! - the UDP socket is an `async_io::Async` socket driven by `quinn::udp` (GSO/GRO, ECN).
//!
//! No `unsafe impl Send` is needed: every object handed to quinn is `Send` by construction.
//! glommio tasks accept wakes from other threads (async-io's reactor wakes them).

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_io::Async;
use quinn::udp::{RecvMeta, Transmit, UdpSocketState};
use quinn::{AsyncTimer, AsyncUdpSocket, UdpPoller};

/// UDP socket buffer size. With the kernel default (208 KiB) 1-4% of packets were dropped under
/// load on loopback (shared/facts.md).
pub const UDP_SOCKET_BUFFER_BYTES: usize = 4 << 20;
/// Memory each glommio executor registers for io_uring; the default 10 MiB per ring would hit a
/// non-root memlock limit (8 MiB).
const EXECUTOR_IO_MEMORY_BYTES: usize = 2 << 20;

/// quinn's runtime on the current glommio executor. Create endpoints only from inside one.
#[derive(Debug, Default, Clone, Copy)]
pub struct GlommioRuntime;

impl quinn::Runtime for GlommioRuntime {
    fn new_timer(&self, at: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(async_io::Timer::at(at))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        glommio::spawn_local(future).detach();
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(UdpSocket::new(socket)?))
    }
}

/// A UDP socket for quinn: async-io readiness plus quinn-udp's batched send/receive.
struct UdpSocket {
    io: Async<std::net::UdpSocket>,
    state: UdpSocketState,
    /// Set when a send hit WouldBlock. quinn asks for writability before every send; asking the
    /// reactor each time costs two thread hops, so we say "writable" at once unless the last
    /// send was refused (shared/facts.md).
    send_blocked: AtomicBool,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.io.get_ref().local_addr())
            .finish()
    }
}

impl UdpSocket {
    fn new(socket: std::net::UdpSocket) -> io::Result<Self> {
        let state = UdpSocketState::new((&socket).into())?;
        let io = Async::new_nonblocking(socket)?;
        Ok(UdpSocket {
            io,
            state,
            send_blocked: AtomicBool::new(false),
        })
    }
}

impl AsyncUdpSocket for UdpSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        Box::pin(WritablePoller { socket: self })
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        let result = self.state.send((&self.io).into(), transmit);
        if matches!(&result, Err(error) if error.kind() == io::ErrorKind::WouldBlock) {
            self.send_blocked.store(true, Ordering::Relaxed);
        }
        result
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        buffers: &mut [io::IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            // Receive first and ask the reactor only when the socket is empty: under load the
            // socket is rarely empty, and each readiness registration is an epoll_ctl plus a
            // wake-up from the reactor thread.
            match self.state.recv((&self.io).into(), buffers, meta) {
                Ok(count) => return Poll::Ready(Ok(count)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
            match self.io.poll_readable(cx) {
                // Readable since we looked: try again.
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn max_receive_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }
}

/// Writability for one quinn task; see `UdpSocket::send_blocked`.
struct WritablePoller {
    socket: Arc<UdpSocket>,
}

impl fmt::Debug for WritablePoller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WritablePoller")
    }
}

impl UdpPoller for WritablePoller {
    fn poll_writable(self: Pin<&mut Self>, cx: &mut Context) -> Poll<io::Result<()>> {
        if !self.socket.send_blocked.load(Ordering::Relaxed) {
            return Poll::Ready(Ok(()));
        }
        let ready = self.socket.io.poll_writable(cx);
        if matches!(ready, Poll::Ready(Ok(()))) {
            self.socket.send_blocked.store(false, Ordering::Relaxed);
        }
        ready
    }
}

/// Binds a UDP socket for an endpoint, with [`UDP_SOCKET_BUFFER_BYTES`] buffers.
pub fn bind_udp(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    set_buffer_sizes(&socket);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Asks for large socket buffers. The kernel caps them at net.core.{r,w}mem_max; as root the
/// FORCE variants lift that cap. Failure only costs throughput, so it is logged, not fatal.
fn set_buffer_sizes(socket: &socket2::Socket) {
    use std::os::fd::AsRawFd;
    let _ = socket.set_recv_buffer_size(UDP_SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_SOCKET_BUFFER_BYTES);
    if socket.recv_buffer_size().unwrap_or(0) < UDP_SOCKET_BUFFER_BYTES {
        let size = UDP_SOCKET_BUFFER_BYTES as libc::c_int;
        for option in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
            // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from a live local c_int on an
            // open socket descriptor we own; no memory is retained by the kernel.
            unsafe {
                libc::setsockopt(
                    socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    &size as *const libc::c_int as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
    let receive_bytes = socket.recv_buffer_size().unwrap_or(0);
    if receive_bytes < UDP_SOCKET_BUFFER_BYTES {
        tracing::warn!(receive_bytes, wanted_bytes = UDP_SOCKET_BUFFER_BYTES, "UDP receive buffer smaller than wanted; expect packet drops under load (raise net.core.rmem_max)");
    }
}

/// Runs `make()`'s future on a new glommio executor thread named `name`; returns its result.
/// Tests, benches and the node use this instead of glommio directly.
pub fn run_executor<F, Fut, T>(name: &str, make: F) -> io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .io_memory(EXECUTOR_IO_MEMORY_BYTES);
    let name = name.to_string();
    std::thread::Builder::new().name(name).spawn(move || {
        let executor = builder
            .make()
            .expect("glommio executor starts (io_uring available)");
        executor.run(make())
    })
}

/// Like [`run_executor`], but the executor's thread is pinned to CPU `cpu` (glommio
/// `Placement::Fixed`). Pinning is an option for dedicated machines: when several nodes share a
/// machine it made tail latency worse (shared/facts.md).
pub fn run_executor_pinned<F, Fut, T>(
    name: &str,
    cpu: usize,
    make: F,
) -> io::Result<std::thread::JoinHandle<T>>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T> + 'static,
    T: Send + 'static,
{
    let builder = glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(cpu))
        .name(name)
        .io_memory(EXECUTOR_IO_MEMORY_BYTES);
    let name = name.to_string();
    std::thread::Builder::new().name(name).spawn(move || {
        let executor = builder
            .make()
            .expect("glommio executor starts (io_uring available)");
        executor.run(make())
    })
}

/// Starts `future` on the current executor; it runs until it completes.
pub fn spawn<F: Future<Output = ()> + 'static>(future: F) {
    glommio::spawn_local(future).detach();
}

/// Waits `duration` on the current executor.
pub async fn sleep(duration: Duration) {
    glommio::timer::sleep(duration).await;
}

/// Lets the other ready tasks on this executor run before continuing.
pub async fn yield_now() {
    futures_lite::future::yield_now().await;
}
