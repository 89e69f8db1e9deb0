//! An HTTP reverse proxy routing on the `Host` header: `stable.*` to `http@0.0.x`,
//! `unstable.*` to `http@0.1.x`, each request to a random live instance, `503 service
//! not available` when there is none. Starts a hub, two backends (`http@0.0.1` and
//! `http@0.1.0`) and the router, sends a request per host, stops the stable backend and
//! asks again.
//!
//! ```sh
//! cargo run -p seaport-examples --example router                  # demo, then exits
//! cargo run -p seaport-examples --example router -- --serve 8080  # then serves on 127.0.0.1:8080
//! curl -H 'Host: unstable.example.com' http://127.0.0.1:8080/
//! ```
//!
//! Add `--hub HOST:PORT` to use a running `seaport listen` instead of an in-process hub.
//! The router is `seaport_examples::router::serve_router` (`examples/src/router.rs`).

#[async_std::main]
async fn main() -> anyhow::Result<()> {
    let mut hub = None;
    let mut serve = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--hub" => hub = Some(args.next().ok_or_else(|| anyhow::anyhow!("--hub needs HOST:PORT"))?),
            "--serve" => serve = Some(args.next().ok_or_else(|| anyhow::anyhow!("--serve needs a PORT"))?),
            other => anyhow::bail!("unknown argument {other:?}; usage: router [--hub HOST:PORT] [--serve PORT]"),
        }
    }
    let addr = format!("127.0.0.1:{}", serve.as_deref().unwrap_or("0"));
    seaport_examples::router::run(hub, &addr, serve.is_some()).await?;
    Ok(())
}
