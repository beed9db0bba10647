//! Hostile requests against a real `yuma serve`, sent as raw HTTP/2 so nothing on the client
//! side tidies them up: each must get a gRPC status, and the daemon's log must hold no panic.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use prost::Message;
use prost::bytes::{BufMut, Bytes, BytesMut};
use tokio::net::TcpStream;
use yuma::server::pb;
use yuma::server::proto::{self, MatrixForm};

/// Upper bound on one exchange, so a hang fails instead of blocking CI.
const BOUND: Duration = Duration::from_secs(60);

/// The running daemon with its log file; killed when the test ends, however it ends.
struct Daemon {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Daemon {
    fn start() -> Self {
        let log = std::env::temp_dir().join(format!("yuma-hostile-{}.log", std::process::id()));
        let mut child = Command::new(env!("CARGO_BIN_EXE_yuma"))
            .args(["serve", "--listen", "127.0.0.1:0", "--backend", "cpu"])
            .env("RUST_LOG", "debug")
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("yuma serve starts");
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("yuma serve: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
            .parse()
            .unwrap();
        Self { child, addr, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// What came back for one request.
#[derive(Debug)]
struct Answer {
    http: u16,
    grpc_status: Option<i32>,
    grpc_message: String,
}

/// `grpc-status` and `grpc-message` from a header block, if it holds them.
fn status_in(headers: &http::HeaderMap) -> Option<(i32, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse().ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or_default()
        .to_string();
    Some((code, message))
}

/// Sends one POST to `path` with `headers` and `body` on a fresh connection and reads the
/// whole answer; `Err` when the stream or connection broke instead of answering.
async fn send(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &[u8])],
    body: Bytes,
) -> Result<Answer, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (client, connection) = h2::client::handshake(tcp)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let mut client = client.ready().await.map_err(|e| e.to_string())?;
    let mut request = http::Request::post(format!("http://{addr}{path}"))
        .body(())
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let (response, mut stream) = client
        .send_request(request, false)
        .map_err(|e| e.to_string())?;
    stream.send_data(body, true).map_err(|e| e.to_string())?;
    let response = response.await.map_err(|e| format!("response: {e}"))?;
    let http = response.status().as_u16();
    let early = status_in(response.headers());
    let mut body = response.into_body();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| format!("body: {e}"))?;
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body
        .trailers()
        .await
        .map_err(|e| format!("trailers: {e}"))?;
    let (grpc_status, grpc_message) = early
        .or_else(|| trailers.as_ref().and_then(status_in))
        .map_or((None, String::new()), |(c, m)| (Some(c), m));
    Ok(Answer {
        http,
        grpc_status,
        grpc_message,
    })
}

/// A gRPC message frame: the compressed flag, the length it claims, then `payload`.
fn frame(claimed_len: u32, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(5 + payload.len());
    b.put_u8(0);
    b.put_u32(claimed_len);
    b.put_slice(payload);
    b.freeze()
}

/// A well-formed `RunEpochs` request of one small epoch.
fn good_request() -> Vec<u8> {
    let mut input = yuma::example::default_example();
    // 16 uids keep each call quick; the example's other fields stay as they are.
    let n = 16;
    input.n = n;
    input.commit_block.truncate(n.into());
    input.alpha_stake.truncate(n.into());
    input.tao_stake.truncate(n.into());
    input.last_update.truncate(n.into());
    input.block_at_registration.truncate(n.into());
    input.validator_permit.truncate(n.into());
    input.owner_uid = Some(0);
    input.weights = yuma::model::SparseMatrix::empty(n.into());
    input.bonds = yuma::model::SparseMatrix::empty(n.into());
    pb::RunEpochsRequest {
        epochs: vec![proto::input_to_proto(&input, MatrixForm::Packed)],
    }
    .encode_to_vec()
}

/// One hostile request and the gRPC codes that are a right answer to it.
struct Case {
    what: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static [u8])>,
    body: Bytes,
    codes: &'static [tonic::Code],
    /// The HTTP status expected with it.
    http: u16,
}

const RUN: &str = "/yuma.v1.Yuma/RunEpochs";
const GRPC: (&str, &[u8]) = ("content-type", b"application/grpc");
const TE: (&str, &[u8]) = ("te", b"trailers");

fn cases() -> Vec<Case> {
    use tonic::Code::*;
    let good = good_request();
    let good_frame = frame(good.len() as u32, &good);
    let mut cases = Vec::new();
    // An invalid grpc-timeout is ignored (as tonic's own layer ignores it): the call runs.
    for timeout in [
        &b"18446744073709551615S"[..],
        b"18446744073709551615H",
        b"100000000n",
        b"99999999999999999999999999999999999999m",
        b"-1S",
        b"+5S",
        b"5x",
        b"S",
        b"1.5S",
        b"5 S",
        b"\xff\xfeS",
    ] {
        cases.push(Case {
            what: "malformed grpc-timeout",
            path: RUN,
            headers: vec![GRPC, TE, ("grpc-timeout", timeout)],
            body: good_frame.clone(),
            codes: &[Ok],
            http: 200,
        });
    }
    // The largest valid timeout of each unit: a deadline far away, the call runs.
    for timeout in [&b"99999999H"[..], b"99999999M", b"99999999S", b"99999999m"] {
        cases.push(Case {
            what: "largest grpc-timeout",
            path: RUN,
            headers: vec![GRPC, TE, ("grpc-timeout", timeout)],
            body: good_frame.clone(),
            codes: &[Ok],
            http: 200,
        });
    }
    cases.push(Case {
        what: "a frame that claims 4 GiB",
        path: RUN,
        headers: vec![GRPC, TE],
        body: frame(u32::MAX, &good),
        codes: &[ResourceExhausted],
        http: 200,
    });
    cases.push(Case {
        what: "a frame that claims 4 GiB, compressed",
        path: RUN,
        headers: vec![GRPC, TE],
        body: {
            let mut b = BytesMut::from(&frame(u32::MAX, &good)[..]);
            b[0] = 1;
            b.freeze()
        },
        codes: &[Internal],
        http: 200,
    });
    cases.push(Case {
        what: "a truncated frame",
        path: RUN,
        headers: vec![GRPC, TE],
        body: frame(good.len() as u32, &good[..good.len() / 2]),
        codes: &[Internal, InvalidArgument],
        http: 200,
    });
    cases.push(Case {
        what: "a truncated frame header",
        path: RUN,
        headers: vec![GRPC, TE],
        body: Bytes::from_static(&[0, 0, 0]),
        codes: &[Internal, InvalidArgument],
        http: 200,
    });
    cases.push(Case {
        what: "garbage protobuf",
        path: RUN,
        headers: vec![GRPC, TE],
        body: frame(8, &[0xff; 8]),
        codes: &[Internal, InvalidArgument],
        http: 200,
    });
    cases.push(Case {
        what: "protobuf that decodes into a malformed epoch",
        path: RUN,
        headers: vec![GRPC, TE],
        body: {
            let bad = pb::RunEpochsRequest {
                epochs: vec![pb::EpochInput {
                    n: 3,
                    ..Default::default()
                }],
            }
            .encode_to_vec();
            frame(bad.len() as u32, &bad)
        },
        codes: &[InvalidArgument],
        http: 200,
    });
    cases.push(Case {
        what: "garbage StreamEpochs message",
        path: "/yuma.v1.Yuma/StreamEpochs",
        headers: vec![GRPC, TE],
        body: frame(4, &[0x0a, 0xff, 0xff, 0xff]),
        codes: &[Internal, InvalidArgument],
        http: 200,
    });
    for content_type in [
        &b"text/plain"[..],
        b"application/json",
        b"application/grpcx",
    ] {
        cases.push(Case {
            what: "the wrong content-type",
            path: RUN,
            headers: vec![("content-type", content_type), TE],
            body: good_frame.clone(),
            codes: &[InvalidArgument],
            http: 415,
        });
    }
    cases.push(Case {
        what: "no content-type",
        path: RUN,
        headers: vec![TE],
        body: good_frame.clone(),
        codes: &[InvalidArgument],
        http: 415,
    });
    cases.push(Case {
        what: "an unknown method",
        path: "/yuma.v1.Yuma/Nope",
        headers: vec![GRPC, TE],
        body: good_frame.clone(),
        codes: &[Unimplemented],
        http: 200,
    });
    cases
}

#[tokio::test]
async fn every_hostile_request_gets_a_grpc_status_and_nothing_panics() {
    let daemon = Daemon::start();
    // The harness itself: a well-formed raw request is answered OK.
    let ok = send(daemon.addr, RUN, &[GRPC, TE], {
        let good = good_request();
        frame(good.len() as u32, &good)
    });
    let ok = tokio::time::timeout(BOUND, ok).await.unwrap().unwrap();
    assert_eq!(ok.grpc_status, Some(0), "{ok:?}");

    let mut failures = Vec::new();
    let cases = cases();
    for case in &cases {
        let label = format!(
            "{} ({:?})",
            case.what,
            case.headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v)))
                .collect::<Vec<_>>()
        );
        let answer = tokio::time::timeout(
            BOUND,
            send(daemon.addr, case.path, &case.headers, case.body.clone()),
        )
        .await
        .unwrap_or_else(|_| Err("no answer in time".into()));
        match answer {
            Ok(a) => {
                eprintln!(
                    "hostile: {label}: HTTP {}, grpc-status {:?} {:?}",
                    a.http, a.grpc_status, a.grpc_message
                );
                let code = a.grpc_status.map(tonic::Code::from_i32);
                // A refusal says why; tonic's router answers an unknown method bare.
                let named = matches!(code, Some(tonic::Code::Ok | tonic::Code::Unimplemented))
                    || !a.grpc_message.is_empty();
                if !code.is_some_and(|c| case.codes.contains(&c)) || a.http != case.http || !named {
                    failures.push(format!(
                        "{label}: {a:?}, wanted one of {:?} with HTTP {} and a message",
                        case.codes, case.http
                    ));
                }
            }
            Err(e) => failures.push(format!("{label}: no gRPC status: {e}")),
        }
    }
    // Still serving after all of it.
    let again = send(daemon.addr, RUN, &[GRPC, TE], {
        let good = good_request();
        frame(good.len() as u32, &good)
    });
    let again = tokio::time::timeout(BOUND, again).await.unwrap().unwrap();
    assert_eq!(again.grpc_status, Some(0), "{again:?}");

    let log = daemon.log();
    let panics = log.matches("panicked").count();
    if panics > 0 {
        failures.push(format!("{panics} panics in the daemon log:\n{log}"));
    }
    eprintln!(
        "hostile: {} hostile requests, {} without the right gRPC status, {panics} panics",
        cases.len(),
        failures.len() - usize::from(panics > 0)
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
