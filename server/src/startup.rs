//! Building and running the web application.

use std::{net::SocketAddr, time::Duration};

use app::{App, shell};
use axum::Router;
use backend::Ctx;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::{net::TcpListener, sync::watch};

use crate::state::{AppState, Shared, WebLimits};

/// A bound, not yet running web server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    port: u16,
}

/// How long in-flight requests may take to finish after a shutdown signal.
pub const HTTP_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

impl Application {
    /// Binds `BIND_ADDR` (port 0 picks a free port) and builds the router.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn build(ctx: Ctx) -> anyhow::Result<Self> {
        backend::telemetry::start_upkeep();
        let listener = TcpListener::bind(ctx.settings.bind_addr).await?;
        let addr = listener.local_addr()?;
        let router = router(ctx, addr);
        // The dummy hash that unknown-account sign-ins are checked against is computed now, in the background,
        // so the first such check takes as long as any other (no timing tell right after a deploy).
        tokio::task::spawn_blocking(backend::auth::password::warm_up);
        Ok(Self {
            listener,
            router,
            port: addr.port(),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until `shutdown` turns true, then drains in-flight requests (bounded).
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn run_until_stopped(self, shutdown: watch::Receiver<bool>) -> std::io::Result<()> {
        let mut stop = shutdown.clone();
        let serve = axum::serve(
            no_delay(self.listener),
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
        let mut stop2 = shutdown;
        tokio::select! {
            r = serve => r,
            () = async move {
                let _ = stop2.wait_for(|s| *s).await;
                tokio::time::sleep(HTTP_DRAIN_TIMEOUT).await;
            } => {
                tracing::warn!("in-flight requests did not finish in time; closing");
                Ok(())
            }
        }
    }
}

/// Accepted connections with Nagle's algorithm off. hyper writes a response's head and its (chunked) body in
/// separate writes; with Nagle on, the second small write waits for the ACK of the first, which the client
/// delays (up to 40 ms on Linux) on a kept-alive connection, so server-rendered pages took ≈13 ms each on a
/// reused connection (nginx keeps its upstream connections alive). bench/pages.sh measures it.
fn no_delay(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn set(tcp: &mut tokio::net::TcpStream) {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY could not be set on a connection");
        }
    }
    listener.tap_io(set as fn(&mut tokio::net::TcpStream))
}

/// The full router: pages, server functions, probes, API, static files, middleware.
pub fn router(ctx: Ctx, addr: SocketAddr) -> Router {
    let leptos = LeptosOptions::builder()
        .output_name("vortex")
        .site_root(ctx.settings.site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(if ctx.settings.is_production() {
            leptos::config::Env::PROD
        } else {
            leptos::config::Env::DEV
        })
        .build();
    let routes = generate_route_list(App);
    let state = AppState::new(Shared {
        leptos: leptos.clone(),
        ctx: ctx.clone(),
        limits: WebLimits::new(&ctx.settings),
        hub: backend::notify::live::hub(),
        paper_hub: crate::routes::paper::live::hub(),
        pages: std::sync::Arc::default(),
        signed_in: std::sync::Arc::new(crate::signed_in_cache::SignedInCache::new(&ctx)),
    });
    // One Postgres listener per web process feeds the live streams (notifications and paper runs) and tells
    // the signed-in page cache what changed.
    backend::live::Listener::start(
        &ctx.db,
        vec![
            state.hub.handle(),
            state.paper_hub.handle(),
            state.signed_in.handle(),
        ],
    );
    // The closures below are copied with their route for every request (axum clones a route's service to
    // call it), so they hold their values behind an `Arc` and clone them only when a page is rendered.
    let page_ctx = std::sync::Arc::new(ctx.clone());
    let fallback_ctx = page_ctx.clone();
    let shell_options = std::sync::Arc::new(leptos);
    let router = Router::new()
        .leptos_routes_with_context(
            &state,
            routes,
            move || provide_context(Ctx::clone(&page_ctx)),
            move || shell(LeptosOptions::clone(&shell_options)),
        )
        .merge(crate::routes::router())
        .merge(crate::routes::upload::router(
            ctx.settings.market.upload_limit_bytes,
        ))
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(
            move || provide_context(Ctx::clone(&fallback_ctx)), shell
        ));
    crate::middleware::apply(router, &state).with_state(state)
}

/// The small HTTP listener of a `vortex worker` process (`METRICS_ADDR`): `/health`, `/ready` and `/metrics`,
/// so worker job metrics can be scraped and orchestrators can probe liveness.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve_worker_probes(
    ctx: Ctx,
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use axum::routing::get;
    let app = Router::new()
        .route("/health", get(crate::routes::health::health))
        .route("/ready", get(crate::routes::health::ready))
        .route("/metrics", get(crate::routes::metrics::metrics))
        .with_state(ctx);
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "worker probes listening");
    axum::serve(no_delay(listener), app)
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_have_nagle_off() {
        use axum::serve::Listener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut listener = no_delay(listener);
        let (accepted, client) =
            tokio::join!(listener.accept(), tokio::net::TcpStream::connect(addr));
        let (io, _) = accepted;
        assert!(io.nodelay().unwrap(), "TCP_NODELAY on the accepted socket");
        // (The client's own socket keeps the OS default.)
        assert!(!client.unwrap().nodelay().unwrap());
    }
}
