//! `sandflow-model-server [ADDR]`: serves the local test model on `ADDR`
//! (default `127.0.0.1:8089`) until interrupted.

use sandflow_model_server::{ModelServer, Options};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8089".to_owned()).parse()?;
    let server = ModelServer::start(Options { listen: Some(listen), ..Options::default() }).await?;
    eprintln!("model server on {}/v1", server.url());
    server.wait().await;
    Ok(())
}
