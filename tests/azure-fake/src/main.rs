//! `contain-azure-fake`: serves the Azure fake on 127.0.0.1 until SIGTERM or Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use contain_azure_fake::FakeAzure;

struct Options {
    port: u16,
    seed: Option<String>,
}

fn usage() -> String {
    format!(
        "Usage: contain-azure-fake [--port N] [--seed FILE]\n\
         \n\
         Serves a fake of Azure Resource Manager, Microsoft Graph and the Entra ID token\n\
         endpoint on 127.0.0.1, and prints `listening on http://127.0.0.1:PORT`.\n\
         \n\
         Options:\n\
         \x20 --port N     TCP port to listen on (default 0: the system picks a free port)\n\
         \x20 --seed FILE  JSON file of the form {{\"arm\": {{id: body, ...}}, \"graph\": {{\"users\": [...], ...}}}}\n\
         \n\
         Endpoints: ARM at URL, Graph at URL/graph, authority host URL/login.\n\
         Accepted credentials (public test values): tenant {}, client id {}, client secret {}.\n",
        FakeAzure::TENANT,
        FakeAzure::CLIENT_ID,
        FakeAzure::CLIENT_SECRET
    )
}

fn parse_options() -> Result<Option<Options>, String> {
    let mut options = Options {
        port: 0,
        seed: None,
    };
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.as_str() {
            "--help" | "-h" => return Ok(None),
            "--port" => {
                let value = arguments
                    .next()
                    .ok_or("--port needs a value, such as --port 8080")?;
                options.port = value.parse().map_err(|_| {
                    format!("invalid --port {value}: expected a number from 0 to 65535")
                })?;
            }
            "--seed" => {
                options.seed = Some(arguments.next().ok_or("--seed needs a file path")?);
            }
            other => return Err(format!("unknown argument {other}; see --help")),
        }
    }
    Ok(Some(options))
}

async fn wait_for_stop_signal() -> &'static str {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                eprintln!(
                    "contain-azure-fake: cannot listen for SIGTERM ({error}); stop it with Ctrl-C"
                );
                let _ = tokio::signal::ctrl_c().await;
                return "Ctrl-C";
            }
        };
        tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "Ctrl-C",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(Some(options)) => options,
        Ok(None) => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("contain-azure-fake: {message}");
            return ExitCode::from(2);
        }
    };
    let fake = match FakeAzure::start_on_port(options.port).await {
        Ok(fake) => fake,
        Err(error) => {
            eprintln!(
                "contain-azure-fake: failed to listen on 127.0.0.1:{}: {error}",
                options.port
            );
            return ExitCode::FAILURE;
        }
    };
    if let Some(path) = &options.seed {
        let loaded = std::fs::read_to_string(path)
            .map_err(|error| format!("failed to read the seed file {path}: {error}"))
            .and_then(|text| {
                serde_json::from_str(&text)
                    .map_err(|error| format!("the seed file {path} is not valid JSON: {error}"))
            })
            .and_then(|seed| {
                fake.load_seed(&seed)
                    .map_err(|message| format!("invalid seed file {path}: {message}"))
            });
        if let Err(message) = loaded {
            eprintln!("contain-azure-fake: {message}");
            return ExitCode::FAILURE;
        }
    }
    println!("listening on {}", fake.url());
    let _ = std::io::stdout().flush();
    let signal = wait_for_stop_signal().await;
    eprintln!("contain-azure-fake: stopping on {signal}");
    ExitCode::SUCCESS
}
