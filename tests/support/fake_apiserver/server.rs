//! Fake API server, HTTP: hyper 1 requests → routed API calls → responses with the apiserver's status codes,
//! headers and framing (JSON with `\n`, chunked watch events one per chunk, chunked text logs); must not answer
//! anything the real server would refuse.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;

use super::apply;
use super::controllers::{self, Deleted};
use super::exec;
use super::pods::{self, LogOptions};
use super::portforward;
use super::resources::{self, ResourceDef};
use super::selector::Selector;
use super::state::{Event, ObjKey, RequestRecord, State};
use super::status::{self, ApiError};
use super::util::{base64_decode, base64_encode, now_nanos, parse_query, uuid};

/// State shared by the server tasks and the test handle.
pub struct Shared {
    pub state: Mutex<State>,
    /// Woken after every write (watches and log followers wait on it).
    pub changed: Notify,
    pub token: String,
    pub user: String,
    pub server_address: String,
    /// Pod ports tests attached to real TCP servers (the port-forward upstreams).
    pub pod_ports: portforward::PodPorts,
    /// Ports of the pods of an image tests attached to real TCP servers.
    pub image_ports: portforward::ImagePorts,
}

impl Shared {
    /// Locks the state (a panicked holder does not poison the fake for other tests).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Response body: a whole buffer (Content-Length up to 2 KiB, chunked above, like Go's net/http) or a stream of
/// chunks.
pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<Bytes>),
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Full(Some(b)) if b.len() <= 2048 => SizeHint::with_exact(b.len() as u64),
            _ => SizeHint::default(),
        }
    }
}

fn base_response(code: u16) -> hyper::http::response::Builder {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Audit-Id", uuid())
        .header("Cache-Control", "no-cache, private")
}

fn finish(builder: hyper::http::response::Builder, body: Body) -> Response<Body> {
    builder
        .body(body)
        .unwrap_or_else(|_| Response::new(Body::Full(None)))
}

/// A JSON response: compact JSON followed by one `\n`.
pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut text = v.to_string();
    text.push('\n');
    finish(
        base_response(code).header("Content-Type", "application/json"),
        Body::Full(Some(Bytes::from(text))),
    )
}

/// The response for an error (JSON Status, or the plain-text 404 of an unknown group).
pub fn error_response(e: &ApiError) -> Response<Body> {
    match e.body() {
        Some(body) => json_response(e.code(), &body),
        None => finish(
            base_response(404)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("X-Content-Type-Options", "nosniff"),
            Body::Full(Some(Bytes::from_static(b"404 page not found\n"))),
        ),
    }
}

fn stream_response(content_type: &str, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    finish(
        base_response(200).header("Content-Type", content_type),
        Body::Stream(rx),
    )
}

/// What a path addresses.
enum Route {
    Version,
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
    Resource {
        res: &'static ResourceDef,
        namespace: String,
        name: Option<String>,
        sub: Option<String>,
    },
}

fn route(state: &State, path: &str) -> Result<Route, ApiError> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let served = &state.served;
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["version"] => return Ok(Route::Version),
        ["api"] => return Ok(Route::Api),
        ["apis"] => return Ok(Route::Apis),
        ["api", v, rest @ ..] => {
            if !served.group_version_known("", v) {
                return Err(ApiError::resource_not_found());
            }
            ("", *v, rest)
        }
        ["apis", g] => {
            return if served.group_known(g) {
                Ok(Route::Group((*g).to_string()))
            } else {
                Err(ApiError::PlainNotFound)
            };
        }
        ["apis", g, v, rest @ ..] => {
            if !served.group_known(g) {
                return Err(ApiError::PlainNotFound);
            }
            if !served.group_version_known(g, v) {
                return Err(ApiError::resource_not_found());
            }
            (*g, *v, rest)
        }
        _ => return Err(ApiError::PlainNotFound),
    };
    if rest.is_empty() {
        return Ok(Route::GroupVersion(group.to_string(), version.to_string()));
    }
    let ns_sub = rest.len() == 3
        && rest[0] == "namespaces"
        && group.is_empty()
        && served.find(group, version, rest[2]).is_none();
    let (namespace, rest): (String, &[&str]) =
        if rest[0] == "namespaces" && rest.len() >= 3 && !ns_sub {
            (rest[1].to_string(), &rest[2..])
        } else {
            (String::new(), rest)
        };
    let res = served
        .find(group, version, rest[0])
        .ok_or_else(ApiError::resource_not_found)?;
    if !namespace.is_empty() && !res.namespaced {
        return Err(ApiError::resource_not_found());
    }
    let name = rest.get(1).map(|s| (*s).to_string());
    let sub = rest.get(2).map(|s| (*s).to_string());
    if rest.len() > 3 {
        return Err(ApiError::resource_not_found());
    }
    if let Some(s) = &sub
        && !res.subresources.iter().any(|(n, _, _)| n == s)
    {
        return Err(ApiError::resource_not_found());
    }
    Ok(Route::Resource {
        res,
        namespace,
        name,
        sub,
    })
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn truthy(q: &[(String, String)], k: &str) -> bool {
    matches!(param(q, k), Some("true" | "1"))
}

/// Serves one request.
pub async fn handle(
    shared: Arc<Shared>,
    mut req: Request<Incoming>,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, Infallible> {
    // A WebSocket upgrade (port-forward, exec) must be claimed before the request is consumed.
    let upgrade = req
        .headers()
        .contains_key(hyper::header::UPGRADE)
        .then(|| hyper::upgrade::on(&mut req));
    let headers = req.headers().clone();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().unwrap_or_default().to_string();
    let header = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let accept = header("accept").unwrap_or_default();
    let content_type = header("content-type");
    let authorization = header("authorization");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = parse_query(&raw_query);
    let index = {
        let mut st = shared.lock();
        st.requests.push(RequestRecord {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            field_manager: param(&query, "fieldManager").map(str::to_string),
            content_type: content_type.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            code: None,
        });
        st.requests.len() - 1
    };
    let user = match authorization {
        Some(a) if a == format!("Bearer {}", shared.token) => shared.user.clone(),
        Some(_) => {
            set_code(&shared, index, 401);
            return Ok(error_response(&ApiError::unauthorized()));
        }
        None => "system:anonymous".to_string(),
    };
    let call = Call {
        method,
        path,
        query,
        accept,
        content_type,
        body: body.to_vec(),
        user,
        headers,
        upgrade,
    };
    let response = dispatch(&shared, call, shutdown).unwrap_or_else(|e| error_response(&e));
    set_code(&shared, index, response.status().as_u16());
    Ok(response)
}

fn set_code(shared: &Shared, index: usize, code: u16) {
    if let Some(r) = shared.lock().requests.get_mut(index) {
        r.code = Some(code);
    }
}

struct Call {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    accept: String,
    content_type: Option<String>,
    body: Vec<u8>,
    user: String,
    headers: hyper::HeaderMap,
    upgrade: Option<hyper::upgrade::OnUpgrade>,
}

fn verb_of(method: &str, name: Option<&str>, query: &[(String, String)]) -> &'static str {
    match (method, name) {
        ("GET", None) if truthy(query, "watch") => "watch",
        ("GET", None) => "list",
        ("GET", Some(_)) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", None) => "deletecollection",
        ("DELETE", Some(_)) => "delete",
        _ => "get",
    }
}

fn dispatch(
    shared: &Arc<Shared>,
    call: Call,
    shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let mut st = shared.lock();
    let route = route(&st, &call.path)?;
    let aggregated = resources::wants_aggregated(&call.accept);
    match route {
        Route::Version => Ok(json_response(200, &resources::version_doc())),
        Route::Api if aggregated => Ok(aggregated_response(&resources::aggregated_doc(
            &st.served, true,
        ))),
        Route::Api => Ok(json_response(
            200,
            &resources::api_versions_doc(&shared.server_address),
        )),
        Route::Apis if aggregated => Ok(aggregated_response(&resources::aggregated_doc(
            &st.served, false,
        ))),
        Route::Apis => Ok(json_response(
            200,
            &resources::api_group_list_doc(&st.served),
        )),
        Route::Group(g) => Ok(json_response(200, &resources::api_group_doc(&g))),
        Route::GroupVersion(g, v) => Ok(json_response(
            200,
            &resources::resource_list_doc(&st.served, &g, &v),
        )),
        Route::Resource {
            res,
            namespace,
            name,
            sub,
        } => {
            let verb = verb_of(&call.method, name.as_deref(), &call.query);
            authorize(
                &st,
                &call.user,
                verb,
                res,
                &namespace,
                name.as_deref(),
                sub.as_deref(),
            )?;
            let name_str = name.clone().unwrap_or_default();
            let q = &call.query;
            let result = match (call.method.as_str(), name.as_deref(), sub.as_deref()) {
                ("GET", None, None) if truthy(q, "watch") => {
                    drop(st);
                    return start_watch(shared, res, namespace, q, shutdown);
                }
                ("GET", None, None) => {
                    list(&st, res, &namespace, q).map(|v| json_response(200, &v))
                }
                ("GET", Some(n), None | Some("status")) => st
                    .get(res, &namespace, n)
                    .cloned()
                    .map(|v| json_response(200, &v))
                    .ok_or_else(|| ApiError::not_found(res.plural, res.group, n)),
                ("GET", Some(n), Some("portforward")) => {
                    let n = n.to_string();
                    return portforward::serve(
                        shared,
                        st,
                        &namespace,
                        &n,
                        q,
                        &call.headers,
                        call.upgrade,
                        shutdown,
                    );
                }
                ("GET" | "POST", Some(n), Some("exec")) => {
                    // kube-apiserver 1.35 also requires `create` for a GET that upgrades (kubernetes#133515).
                    authorize(
                        &st,
                        &call.user,
                        "create",
                        res,
                        &namespace,
                        Some(n),
                        Some("exec"),
                    )?;
                    let n = n.to_string();
                    return exec::serve(
                        shared,
                        st,
                        &namespace,
                        &n,
                        q,
                        &call.headers,
                        call.upgrade,
                        shutdown,
                    );
                }
                ("GET", Some(n), Some("log")) => {
                    let n = n.to_string();
                    drop(st);
                    return logs(shared, &namespace, &n, q, shutdown);
                }
                ("POST", None, None) => apply::create(&mut st, res, &namespace, &call.body, q)
                    .map(|(c, v)| json_response(c, &v)),
                ("PATCH", Some(n), sub @ (None | Some("status"))) => {
                    let ct = call.content_type.as_deref().unwrap_or_default();
                    let status_sub = sub.is_some();
                    if ct.starts_with("application/apply-patch+yaml") {
                        apply::apply(&mut st, res, &namespace, n, &call.body, q)
                            .map(|(c, v)| json_response(c, &v))
                    } else if ct.starts_with("application/merge-patch+json")
                        || ct.starts_with("application/strategic-merge-patch+json")
                    {
                        apply::patch(&mut st, res, &namespace, n, &call.body, q, status_sub)
                            .map(|(c, v)| json_response(c, &v))
                    } else {
                        Err(ApiError::Status {
                            code: 415,
                            reason: Some("UnsupportedMediaType"),
                            message: format!(
                                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (fake server; got {ct:?})"
                            ),
                            details: None,
                        })
                    }
                }
                ("PUT", Some(n), sub @ (None | Some("status"))) => {
                    apply::put(&mut st, res, &namespace, n, &call.body, q, sub.is_some())
                        .map(|(c, v)| json_response(c, &v))
                }
                ("DELETE", Some(n), None) => delete(&mut st, res, &namespace, n, &call.body, q),
                _ => Err(ApiError::Status {
                    code: 405,
                    reason: Some("MethodNotAllowed"),
                    message: format!(
                        "the server does not allow this method on the requested resource ({} {name_str})",
                        call.method
                    ),
                    details: Some(Box::new(status::Details::default())),
                }),
            };
            if result.is_ok() && call.method != "GET" {
                controllers::reconcile(&mut st);
                drop(st);
                shared.changed.notify_waiters();
            }
            result
        }
    }
}

fn aggregated_response(v: &Value) -> Response<Body> {
    let text = format!("{v}\n");
    let etag = format!("\"{:016X}\"", super::util::fnv32a(text.as_bytes()));
    finish(
        Response::builder()
            .status(200)
            .header("Audit-Id", uuid())
            .header("Cache-Control", "public")
            .header(
                "Content-Type",
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            )
            .header("Etag", etag)
            .header("Vary", "Accept"),
        Body::Full(Some(Bytes::from(text))),
    )
}

fn authorize(
    st: &State,
    user: &str,
    verb: &str,
    res: &ResourceDef,
    namespace: &str,
    name: Option<&str>,
    sub: Option<&str>,
) -> Result<(), ApiError> {
    let full = match sub {
        Some(s) => format!("{}/{s}", res.plural),
        None => res.plural.to_string(),
    };
    // A status read/write is authorized as its own resource, the log as `get pods/log`.
    let anonymous = user == "system:anonymous";
    let denied = anonymous
        || st.denials.iter().any(|d| {
            (d.verb == verb || d.verb == "*")
                && (d.resource == full || d.resource == "*")
                && d.namespace.as_deref().is_none_or(|ns| ns == namespace)
        });
    if !denied {
        return Ok(());
    }
    Err(ApiError::forbidden_rbac(
        user,
        verb,
        res.plural,
        sub,
        res.group,
        (!namespace.is_empty()).then_some(namespace),
        name,
    ))
}

fn strip_item(mut v: Value) -> Value {
    if let Some(m) = v.as_object_mut() {
        m.shift_remove("kind");
        m.shift_remove("apiVersion");
    }
    v
}

fn parse_rv(s: &str) -> Result<u64, ApiError> {
    s.parse().map_err(|_| {
        ApiError::internal(format!(
            "resourceVersion: Invalid value: {s:?}: strconv.ParseUint: parsing {s:?}: invalid syntax"
        ))
    })
}

fn selectors(q: &[(String, String)]) -> Result<(Selector, Selector), ApiError> {
    let labels = Selector::parse_labels(param(q, "labelSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let fields = Selector::parse_fields(param(q, "fieldSelector").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

fn list(
    st: &State,
    res: &'static ResourceDef,
    namespace: &str,
    q: &[(String, String)],
) -> Result<Value, ApiError> {
    let (labels, fields) = selectors(q)?;
    let mut start_after: Option<String> = None;
    let wanted = |k: &ObjKey| {
        k.group == res.group
            && k.plural == res.plural
            && (namespace.is_empty() || k.namespace == namespace)
    };
    let (rv, snapshot) = if let Some(token) = param(q, "continue").filter(|t| !t.is_empty()) {
        let decoded = base64_decode(token)
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid continue token: continue key is not valid: {token:?}"
                ))
            })?;
        let rv = decoded["rv"].as_u64().unwrap_or(0);
        start_after = decoded["start"].as_str().map(str::to_string);
        if rv < st.oldest_rv {
            return Err(ApiError::Status {
                code: 410,
                reason: Some("Expired"),
                message: "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.".into(),
                details: None,
            });
        }
        (rv, st.snapshot_at(rv))
    } else {
        match (
            param(q, "resourceVersion").filter(|v| !v.is_empty()),
            param(q, "resourceVersionMatch"),
        ) {
            (Some(v), Some("Exact")) => {
                let rv = parse_rv(v)?;
                if rv < st.oldest_rv {
                    return Err(ApiError::list_expired());
                }
                (rv, st.snapshot_at(rv))
            }
            (Some(v), _) => {
                parse_rv(v)?;
                (st.rv, current(st, &wanted, &labels, &fields))
            }
            (None, _) => (st.rv, current(st, &wanted, &labels, &fields)),
        }
    };
    let matching: Vec<(ObjKey, Value)> = snapshot
        .into_iter()
        .filter(|(k, v)| wanted(k) && labels.matches_labels(v) && fields.matches_fields(v))
        .filter(|(k, _)| {
            start_after
                .as_ref()
                .is_none_or(|s| format!("{}/{}\u{0}", k.namespace, k.name) > *s)
        })
        .collect();
    let limit = param(q, "limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let total = matching.len();
    let take = limit.unwrap_or(total).min(total);
    let mut meta = serde_json::Map::new();
    meta.insert("resourceVersion".into(), json!(rv.to_string()));
    if take < total {
        let last = &matching[take - 1].0;
        let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{}/{}\u{0}", last.namespace, last.name)});
        meta.insert(
            "continue".into(),
            json!(base64_encode(token.to_string().as_bytes(), false)),
        );
        meta.insert("remainingItemCount".into(), json!(total - take));
    }
    let items: Vec<Value> = matching
        .into_iter()
        .take(take)
        .map(|(_, v)| strip_item(v))
        .collect();
    Ok(
        json!({"kind": format!("{}List", res.kind), "apiVersion": res.api_version(), "metadata": meta, "items": items}),
    )
}

/// Copies of the current objects whose key matches, in key order.
fn current(
    st: &State,
    wanted: &impl Fn(&ObjKey) -> bool,
    labels: &Selector,
    fields: &Selector,
) -> BTreeMap<ObjKey, Value> {
    st.objects
        .iter()
        .filter(|(k, v)| wanted(k) && labels.matches_labels(v) && fields.matches_fields(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn delete(
    st: &mut State,
    res: &'static ResourceDef,
    namespace: &str,
    name: &str,
    body: &[u8],
    q: &[(String, String)],
) -> Result<Response<Body>, ApiError> {
    let opts: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    };
    let policy = param(q, "propagationPolicy")
        .map(str::to_string)
        .or_else(|| opts["propagationPolicy"].as_str().map(str::to_string));
    let grace = param(q, "gracePeriodSeconds")
        .and_then(|g| g.parse().ok())
        .or_else(|| opts["gracePeriodSeconds"].as_i64());
    let dry_run = param(q, "dryRun") == Some("All")
        || opts["dryRun"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "All"));
    let warning = (res.kind == "Job" && policy.is_none()).then_some(
        "299 - \"child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning\"",
    );
    if dry_run {
        let mut obj = st
            .get(res, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(res.plural, res.group, name))?;
        if obj.pointer("/metadata/deletionTimestamp").is_none() {
            obj["metadata"]["deletionTimestamp"] = json!(super::util::rfc3339(now_nanos()));
            if res.kind == "Pod" {
                let g = grace
                    .or_else(|| {
                        obj.pointer("/spec/terminationGracePeriodSeconds")
                            .and_then(Value::as_i64)
                    })
                    .unwrap_or(30);
                obj["metadata"]["deletionGracePeriodSeconds"] = json!(g);
            }
        }
        return Ok(json_response(200, &obj));
    }
    let outcome = controllers::delete(st, res, namespace, name, policy.as_deref(), grace)?;
    let mut resp = match outcome {
        Deleted::Gone(obj) => json_response(
            200,
            &status::success_status(
                name,
                res.group,
                res.plural,
                obj.pointer("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            ),
        ),
        Deleted::Terminating(obj) => json_response(200, &obj),
    };
    if let Some(w) = warning
        && let Ok(v) = hyper::header::HeaderValue::from_str(w)
    {
        resp.headers_mut().insert("Warning", v);
    }
    Ok(resp)
}

fn bookmark_object(res: &ResourceDef, rv: u64, initial_end: bool) -> Value {
    let mut meta = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_end {
        let blueprint = format!(
            "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{{}},\"items\":null}}\n",
            res.kind,
            res.api_version()
        );
        meta["annotations"] = json!({
            "k8s.io/initial-events-end": "true",
            "kubernetes.io/initial-events-list-blueprint": base64_encode(blueprint.as_bytes(), true)
        });
    }
    let mut obj = json!({"kind": res.kind, "apiVersion": res.api_version(), "metadata": meta});
    match res.kind {
        "Pod" => {
            obj["spec"] = json!({"containers": null});
            obj["status"] = json!({});
        }
        "Deployment" => {
            obj["spec"] = json!({"replicas": 0, "selector": null, "template": {"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}, "strategy": {}});
            obj["status"] = json!({});
        }
        _ => {}
    }
    obj
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
}

struct WatchFilter {
    res: &'static ResourceDef,
    namespace: String,
    labels: Selector,
    fields: Selector,
}

impl WatchFilter {
    fn matches(&self, key: &ObjKey, obj: &Value) -> bool {
        (self.namespace.is_empty() || key.namespace == self.namespace)
            && self.labels.matches_labels(obj)
            && self.fields.matches_fields(obj)
    }

    fn same_type(&self, e: &Event) -> bool {
        e.key.group == self.res.group && e.key.plural == self.res.plural
    }

    /// The event a watcher sees, with selector transitions turned into ADDED/DELETED.
    fn translate(&self, e: &Event) -> Option<Bytes> {
        if !self.same_type(e) {
            return None;
        }
        let now = self.matches(&e.key, &e.object);
        let before = e.prev.as_ref().is_some_and(|p| self.matches(&e.key, p));
        let kind = match (e.kind, before, now) {
            ("ADDED", _, true) => "ADDED",
            ("MODIFIED", true, true) => "MODIFIED",
            ("MODIFIED", false, true) => "ADDED",
            ("MODIFIED", true, false) => "DELETED",
            ("DELETED", _, _) if before || now => "DELETED",
            _ => return None,
        };
        Some(event_line(kind, &e.object))
    }
}

fn start_watch(
    shared: &Arc<Shared>,
    res: &'static ResourceDef,
    namespace: String,
    q: &[(String, String)],
    mut shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = selectors(q)?;
    let rv_param = param(q, "resourceVersion")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let start_rv = rv_param.as_deref().map(parse_rv).transpose()?;
    let bookmarks = truthy(q, "allowWatchBookmarks");
    let send_initial = truthy(q, "sendInitialEvents") || start_rv.is_none_or(|r| r == 0);
    let timeout = param(q, "timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let filter = WatchFilter {
        res,
        namespace,
        labels,
        fields,
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let started = Instant::now();
        let deadline = timeout.map(|t| started + t);
        // One bookmark shortly before the timeout, as the apiserver sends (04-watch-pods-rollout.http).
        let mut pre_timeout_bookmark = timeout
            .filter(|t| *t >= Duration::from_secs(2))
            .map(|t| started + t - Duration::from_millis(1500));
        let prepared = {
            let st = shared.lock();
            let interval = st.timing.bookmark_interval;
            match start_rv.filter(|_| !send_initial) {
                Some(rv) if rv < st.oldest_rv => {
                    let err = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": format!("too old resource version: {rv} ({})", st.oldest_rv), "reason": "Expired", "code": 410});
                    Err(event_line("ERROR", &err))
                }
                _ => {
                    let mut initial = Vec::new();
                    let mut newest = 0;
                    if send_initial {
                        for (k, v) in st.list(res, None) {
                            if filter.matches(k, v) {
                                newest = newest.max(
                                    v.pointer("/metadata/resourceVersion")
                                        .and_then(Value::as_str)
                                        .and_then(|r| r.parse().ok())
                                        .unwrap_or(0),
                                );
                                initial.push(event_line("ADDED", v));
                            }
                        }
                    }
                    let cursor = if send_initial {
                        st.rv
                    } else {
                        start_rv.unwrap_or(st.rv)
                    };
                    let type_rv = st
                        .events
                        .iter()
                        .rev()
                        .find(|e| filter.same_type(e) && e.rv <= cursor)
                        .map_or(cursor, |e| e.rv);
                    if send_initial && bookmarks {
                        let rv = if start_rv == Some(0) && newest > 0 {
                            newest
                        } else {
                            st.rv
                        };
                        initial.push(event_line("BOOKMARK", &bookmark_object(res, rv, true)));
                    }
                    Ok((interval, initial, cursor, type_rv))
                }
            }
        };
        let (interval, mut initial, mut cursor, mut last_type_rv) = match prepared {
            Ok(p) => p,
            Err(line) => {
                let _ = tx.send(line).await;
                return;
            }
        };
        for line in initial.drain(..) {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let mut next_bookmark = Instant::now() + interval;
        loop {
            let notified = shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let lines: Vec<Bytes> = {
                let st = shared.lock();
                let from = st.events.partition_point(|e| e.rv <= cursor);
                let mut out = Vec::new();
                for e in &st.events[from..] {
                    if filter.same_type(e) {
                        last_type_rv = e.rv;
                    }
                    if let Some(l) = filter.translate(e) {
                        out.push(l);
                    }
                }
                cursor = st.rv;
                out
            };
            for l in lines {
                if tx.send(l).await.is_err() {
                    return;
                }
            }
            let mut wake = next_bookmark;
            if let Some(b) = pre_timeout_bookmark {
                wake = wake.min(b);
            }
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        return;
                    }
                    let pre_due = pre_timeout_bookmark.is_some_and(|b| now >= b);
                    if pre_due {
                        pre_timeout_bookmark = None;
                    }
                    if now >= next_bookmark || pre_due {
                        next_bookmark = now + interval;
                        if bookmarks && tx.send(event_line("BOOKMARK", &bookmark_object(filter.res, last_type_rv, false))).await.is_err() {
                            return;
                        }
                    }
                }
                _ = shutdown.changed() => return,
                () = tx.closed() => return,
            }
        }
    });
    Ok(stream_response("application/json", rx))
}

/// Cuts `text` to the remaining `limitBytes` budget.
fn cut(budget: &mut usize, text: String) -> Option<Bytes> {
    if *budget == 0 || text.is_empty() {
        return None;
    }
    let mut bytes = text.into_bytes();
    bytes.truncate(*budget);
    *budget -= bytes.len();
    Some(Bytes::from(bytes))
}

fn logs(
    shared: &Arc<Shared>,
    namespace: &str,
    name: &str,
    q: &[(String, String)],
    mut shutdown: watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    let pod_res = resources::find_kind("Pod").ok_or_else(ApiError::resource_not_found)?;
    let st = shared.lock();
    let pod = st
        .get(pod_res, namespace, name)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    let uid = pod
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let opts = LogOptions::parse(q, now_nanos())?;
    let sim = st
        .pods
        .get(&uid)
        .cloned()
        .ok_or_else(|| ApiError::not_found("pods", "", name))?;
    let container = pods::resolve_container(&sim, name, &opts)?.clone();
    if pod.pointer("/spec/nodeName").is_none() {
        return Ok(finish(base_response(204), Body::Full(None)));
    }
    let lines = pods::readable_lines(&sim, &container, name, opts.previous)?.to_vec();
    drop(st);
    let mut budget = opts.limit_bytes.unwrap_or(usize::MAX);
    let backlog = cut(&mut budget, opts.render(opts.select(&lines)));
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let follow = opts.follow && !opts.previous && !sim.log_finished(&container.name);
    let shared = Arc::clone(shared);
    let cname = container.name.clone();
    let mut cursor = lines.len();
    tokio::spawn(async move {
        if let Some(b) = backlog
            && tx.send(b).await.is_err()
        {
            return;
        }
        if !follow {
            return;
        }
        loop {
            let notified = shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let (new_lines, done) = {
                let st = shared.lock();
                match st.pods.get(&uid) {
                    None => (Vec::new(), true),
                    Some(sim) => {
                        let c = sim.containers.iter().find(|c| c.name == cname);
                        let new: Vec<_> = c
                            .map(|c| c.logs.get(cursor..).unwrap_or_default().to_vec())
                            .unwrap_or_default();
                        cursor += new.len();
                        (new, sim.log_finished(&cname))
                    }
                }
            };
            for l in new_lines {
                let Some(chunk) = cut(&mut budget, opts.render(std::slice::from_ref(&l))) else {
                    return;
                };
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if done || budget == 0 {
                return;
            }
            tokio::select! {
                () = &mut notified => {}
                _ = shutdown.changed() => return,
                () = tx.closed() => return,
            }
        }
    });
    Ok(stream_response("text/plain", rx))
}
