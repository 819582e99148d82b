//! Ordinary partner traffic: the calls each app makes in one hour.
//!
//! Each app and hour draws from its own stream of the seed, so adding a
//! scenario or a partner leaves every other app's calls as they were.
//! Beside the daytime mix an app may run a nightly batch job. Calls that
//! fail with 429 or 5xx are usually retried after a backoff, and an export
//! start is followed by status polls and a download. Follow-up calls can
//! fall after the hour; the caller sorts them into the hour they belong to.

use super::catalog::{Action, CATALOG, Endpoint, Resource, SEARCH_WORDS, render_path};
use super::clock::{HOUR_MS, rfc3339_seconds};
use super::rng::Rng;
use super::world::{FIRST_PRODUCT_ID, PRODUCT_COUNT, World, stream};

/// One simulated API call, before it is written in a format.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    /// Milliseconds since the Unix epoch, UTC: the time the format's parser
    /// reads as the event time.
    pub time_ms: i64,
    /// Index of the app whose credential the call carries.
    pub app: usize,
    pub client_ip: [u8; 4],
    pub client_port: u16,
    pub user_agent: String,
    pub method: &'static str,
    pub path: String,
    /// Query string without `?`.
    pub query: Option<String>,
    /// Route template, or `/{proxy+}` for a path the API does not document.
    pub route: &'static str,
    /// Index into [`super::CATALOG`]; `None` for an undocumented path.
    pub endpoint: Option<usize>,
    pub status: u16,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub latency_ms: u32,
    /// Random bits that request, trace and span ids are made from.
    pub request_id: u128,
    /// Index of the injected scenario that made or changed this call.
    /// It is never written to the output, where it would reveal the scenario.
    pub label: Option<usize>,
}

impl SimEvent {
    /// Returns the catalogue entry of the call, when it is documented.
    pub fn catalog_endpoint(&self) -> Option<&'static Endpoint> {
        self.endpoint.and_then(|index| CATALOG.get(index))
    }
}

/// The sender of a call: the app whose credential it carries, an address and a user agent.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub app: usize,
    pub ip: [u8; 4],
    pub user_agent: String,
}

/// Options of a call, which scenarios adjust.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallOptions {
    /// Whether failed calls are retried and exports polled.
    pub follow_ups: bool,
    pub label: Option<usize>,
}

impl CallOptions {
    pub(crate) const ORDINARY: CallOptions = CallOptions {
        follow_ups: true,
        label: None,
    };
}

/// Page size that a list endpoint requests by default.
pub(crate) fn default_page_size(resource: Option<Resource>) -> u32 {
    match resource {
        Some(Resource::Customer) => 100,
        Some(Resource::Product) => 200,
        _ => 50,
    }
}

/// Random bits of a request id.
pub(crate) fn request_bits(rng: &mut Rng) -> u128 {
    (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
}

/// Day-to-day variation of an app's volume: a log-normal factor per local day.
fn day_jitter(seed: u64, app: usize, local_day: i64) -> f64 {
    Rng::stream(seed, &[stream::DAY_JITTER, app as u64, local_day as u64]).log_normal(1.0, 0.15)
}

/// Appends the ordinary calls of one app in the hour that starts at `hour_ms`.
pub(crate) fn app_hour(world: &World, app_index: usize, hour_ms: i64, out: &mut Vec<SimEvent>) {
    let Some(app) = world.apps.get(app_index) else {
        return;
    };
    let Some(local) = world.local(app.partner, hour_ms + HOUR_MS / 2) else {
        return;
    };
    let mut rng = Rng::stream(
        world.seed,
        &[stream::TRAFFIC, app_index as u64, hour_ms as u64],
    );
    let jitter = day_jitter(world.seed, app_index, local.day);

    let rate = world.expected_rate(app_index, hour_ms) * jitter;
    let weights: Vec<f64> = app.mix.iter().map(|(_, weight)| *weight).collect();
    for _ in 0..rng.poisson(rate) {
        let time = hour_ms + rng.below(HOUR_MS as u64) as i64;
        let Some(&(endpoint, _)) = app.mix.get(rng.weighted(&weights)) else {
            continue;
        };
        let caller = usual_caller(world, app_index, time, &mut rng);
        emit_call(
            world,
            &caller,
            endpoint,
            time,
            &mut rng,
            CallOptions::ORDINARY,
            out,
        );
    }

    let Some(batch) = &app.batch else {
        return;
    };
    if local.hour != batch.local_hour || (batch.weekdays_only && local.is_day_off()) {
        return;
    }
    let mut rng = Rng::stream(
        world.seed,
        &[stream::BATCH, app_index as u64, hour_ms as u64],
    );
    let calls = batch.calls * world.scale * world.growth_factor(app.partner, hour_ms) * jitter;
    let weights: Vec<f64> = batch.mix.iter().map(|(_, weight)| *weight).collect();
    let span_ms = i64::from(batch.minutes.max(1)) * 60_000;
    for _ in 0..rng.poisson(calls) {
        let time = hour_ms + rng.below(span_ms as u64) as i64;
        let Some(&(endpoint, _)) = batch.mix.get(rng.weighted(&weights)) else {
            continue;
        };
        let caller = usual_caller(world, app_index, time, &mut rng);
        emit_call(
            world,
            &caller,
            endpoint,
            time,
            &mut rng,
            CallOptions::ORDINARY,
            out,
        );
    }
}

/// Returns an app's own address and user agent, with the SDK upgrade applied after its date.
pub(crate) fn usual_caller(world: &World, app_index: usize, time: i64, rng: &mut Rng) -> Caller {
    let Some(app) = world.apps.get(app_index) else {
        return Caller {
            app: app_index,
            ip: [198, 18, 0, 1],
            user_agent: String::new(),
        };
    };
    // The first address carries at least half of the calls.
    let ip_position = if rng.chance(0.5) {
        0
    } else {
        rng.index(app.ips.len())
    };
    let agent_position = if app.user_agents.len() > 1 && rng.chance(0.15) {
        1
    } else {
        0
    };
    let upgraded = app.sdk_upgrade_ms.is_some_and(|upgrade| time >= upgrade);
    let user_agent = app
        .user_agents
        .get(agent_position)
        .map(|agent| {
            if upgraded && agent_position == 0 {
                agent.after_upgrade.clone()
            } else {
                agent.before_upgrade.clone()
            }
        })
        .unwrap_or_default();
    Caller {
        app: app_index,
        ip: app.ips.get(ip_position).copied().unwrap_or([198, 18, 0, 1]),
        user_agent,
    }
}

/// Builds one call to a documented endpoint, with its retries and export
/// follow-ups, and appends them.
pub(crate) fn emit_call(
    world: &World,
    caller: &Caller,
    endpoint_index: usize,
    time: i64,
    rng: &mut Rng,
    options: CallOptions,
    out: &mut Vec<SimEvent>,
) {
    let Some(endpoint) = CATALOG.get(endpoint_index) else {
        return;
    };
    let (path, query) = request_target(world, caller.app, endpoint, time, rng);
    let status = draw_status(world, caller.app, endpoint, time, rng);
    let event = build_event(
        caller,
        endpoint_index,
        endpoint,
        time,
        path,
        query,
        status,
        rng,
        options.label,
    );
    let follow_ups = options.follow_ups;
    let report_started = follow_ups && endpoint.action == Action::ExportStart && status == 202;
    let failed = follow_ups && matches!(status, 429 | 500..=599);
    out.push(event);
    if failed {
        push_retries(world, endpoint, rng, out);
    }
    if report_started {
        push_export_follow_ups(caller, time, rng, options.label, out);
    }
}

/// Assembles an event from its parts, drawing sizes and latency.
#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one call, each drawn elsewhere"
)]
pub(crate) fn build_event(
    caller: &Caller,
    endpoint_index: usize,
    endpoint: &'static Endpoint,
    time: i64,
    path: String,
    query: Option<String>,
    status: u16,
    rng: &mut Rng,
    label: Option<usize>,
) -> SimEvent {
    let page_factor = page_factor(endpoint, query.as_deref());
    SimEvent {
        time_ms: time,
        app: caller.app,
        client_ip: caller.ip,
        client_port: 1024 + rng.below(64_000) as u16,
        user_agent: caller.user_agent.clone(),
        method: endpoint.method,
        path,
        query,
        route: endpoint.route,
        endpoint: Some(endpoint_index),
        status,
        request_bytes: request_size(endpoint, rng),
        response_bytes: response_size(endpoint, status, page_factor, rng),
        latency_ms: latency(endpoint, status, rng),
        request_id: request_bits(rng),
        label,
    }
}

/// Retries a failed call up to three times, with exponential backoff after
/// a 5xx and the server's delay after a 429. Each retry gets a new status.
fn push_retries(
    world: &World,
    endpoint: &'static Endpoint,
    rng: &mut Rng,
    out: &mut Vec<SimEvent>,
) {
    let Some(original) = out.last().cloned() else {
        return;
    };
    let mut previous = original;
    for attempt in 0..3u32 {
        if !matches!(previous.status, 429 | 500..=599) || !rng.chance(0.8) {
            return;
        }
        let delay = if previous.status == 429 {
            1_000 + rng.below(30_000) as i64
        } else {
            1_000 * (1i64 << attempt) + rng.below(1_000) as i64
        };
        let time = previous.time_ms + i64::from(previous.latency_ms) + delay;
        let status = draw_status(world, previous.app, endpoint, time, rng);
        let mut retry = previous.clone();
        retry.time_ms = time;
        retry.status = status;
        retry.client_port = 1024 + rng.below(64_000) as u16;
        let page_factor = page_factor(endpoint, retry.query.as_deref());
        retry.response_bytes = response_size(endpoint, status, page_factor, rng);
        retry.latency_ms = latency(endpoint, status, rng);
        retry.request_id = request_bits(rng);
        out.push(retry.clone());
        previous = retry;
    }
}

/// Polls an export one to three times, then downloads it.
pub(crate) fn push_export_follow_ups(
    caller: &Caller,
    start: i64,
    rng: &mut Rng,
    label: Option<usize>,
    out: &mut Vec<SimEvent>,
) {
    let (Some(status_index), Some(download_index)) = (
        super::catalog::endpoint_id("report_status"),
        super::catalog::endpoint_id("report_download"),
    ) else {
        return;
    };
    let report = 800_000 + rng.below(900_000);
    let mut time = start;
    for _ in 0..1 + rng.below(3) {
        time += 5_000 + rng.below(15_000) as i64;
        push_report_call(caller, status_index, report, time, 200, rng, label, out);
    }
    time += 1_000 + rng.below(4_000) as i64;
    let status = if rng.chance(0.01) { 404 } else { 200 };
    push_report_call(
        caller,
        download_index,
        report,
        time,
        status,
        rng,
        label,
        out,
    );
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call of an export's follow-ups"
)]
fn push_report_call(
    caller: &Caller,
    endpoint_index: usize,
    report: u64,
    time: i64,
    status: u16,
    rng: &mut Rng,
    label: Option<usize>,
    out: &mut Vec<SimEvent>,
) {
    let Some(endpoint) = CATALOG.get(endpoint_index) else {
        return;
    };
    let path = render_path(endpoint.route, report);
    out.push(build_event(
        caller,
        endpoint_index,
        endpoint,
        time,
        path,
        None,
        status,
        rng,
        label,
    ));
}

/// Picks the id an ordinary call names: recent objects of the partner's
/// own block are read most, and products come from the partner's interest.
pub(crate) fn choose_id(
    world: &World,
    app: usize,
    resource: Resource,
    time: i64,
    rng: &mut Rng,
) -> u64 {
    let Some(partner) = world.partner_of(app) else {
        return 1;
    };
    match resource {
        Resource::Product => {
            let interest = partner.products;
            let u = rng.unit();
            let position = (interest.count as f64 * u * u) as u64;
            interest.product(position.min(interest.count.saturating_sub(1)))
        }
        Resource::Report => 800_000 + rng.below(900_000),
        owned => match partner.block(owned) {
            Some(block) => {
                let existing = block.existing(world.progress(time));
                let u = rng.unit();
                let back = (existing as f64 * u * u * u) as u64;
                block.first + existing - 1 - back.min(existing - 1)
            }
            None => FIRST_PRODUCT_ID + rng.below(PRODUCT_COUNT),
        },
    }
}

/// Draws the path and query of an ordinary call.
fn request_target(
    world: &World,
    app: usize,
    endpoint: &Endpoint,
    time: i64,
    rng: &mut Rng,
) -> (String, Option<String>) {
    match endpoint.action {
        Action::List => (
            endpoint.route.to_string(),
            list_query(world, app, endpoint, time, rng),
        ),
        Action::Search => {
            let word = SEARCH_WORDS[rng.index(SEARCH_WORDS.len())];
            (
                endpoint.route.to_string(),
                Some(format!("q={word}&limit=20")),
            )
        }
        Action::Get
        | Action::Update
        | Action::Delete
        | Action::ExportStatus
        | Action::ExportDownload => {
            let resource = endpoint.resource.unwrap_or(Resource::Order);
            let id = choose_id(world, app, resource, time, rng);
            (render_path(endpoint.route, id), None)
        }
        Action::Create | Action::Token | Action::ExportStart => (endpoint.route.to_string(), None),
    }
}

fn list_query(
    world: &World,
    app: usize,
    endpoint: &Endpoint,
    time: i64,
    rng: &mut Rng,
) -> Option<String> {
    let u = rng.unit();
    let page = 1 + (u * u * u * 8.0) as u32;
    let page_size = default_page_size(endpoint.resource);
    match endpoint.resource {
        Some(Resource::Order) => {
            let since = time - time.rem_euclid(HOUR_MS) - HOUR_MS;
            Some(format!(
                "updated_since={}&page={page}&page_size={page_size}",
                rfc3339_seconds(since)
            ))
        }
        Some(Resource::Invoice) => Some(format!("status=open&page={page}&page_size={page_size}")),
        Some(Resource::Shipment) => {
            let order = choose_id(world, app, Resource::Order, time, rng);
            Some(format!("order_id={order}"))
        }
        Some(Resource::Customer | Resource::Product) => {
            Some(format!("page={page}&page_size={page_size}"))
        }
        Some(Resource::Report) | None => None,
    }
}

/// Ratio of the page size a list call requests to the default, which scales its response.
pub(crate) fn page_factor(endpoint: &Endpoint, query: Option<&str>) -> f64 {
    if endpoint.action != Action::List {
        return 1.0;
    }
    let asked = query.and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("page_size="))
            .and_then(|value| value.parse::<u32>().ok())
    });
    match asked {
        Some(size) => f64::from(size) / f64::from(default_page_size(endpoint.resource)),
        None => 1.0,
    }
}

/// Returns the error share of the burst in progress at `time`, if any.
fn error_share_at(world: &World, time: i64) -> Option<f64> {
    world
        .error_bursts
        .iter()
        .find(|burst| (burst.start_ms..burst.end_ms).contains(&time))
        .map(|burst| burst.error_share)
}

/// Draws the status of an ordinary call.
pub(crate) fn draw_status(
    world: &World,
    app: usize,
    endpoint: &Endpoint,
    time: i64,
    rng: &mut Rng,
) -> u16 {
    if let Some(share) = error_share_at(world, time)
        && rng.chance(share)
    {
        return if rng.chance(0.7) { 502 } else { 503 };
    }
    if rng.chance(0.0015) {
        return [500, 500, 502, 503, 504][rng.index(5)];
    }
    let throttle = world
        .partner_of(app)
        .map_or(0.0, |partner| partner.tier.throttle_share());
    if rng.chance(throttle) {
        return 429;
    }
    let r = rng.unit();
    match endpoint.action {
        Action::Get => {
            if r < 0.025 {
                404
            } else if r < 0.028 {
                403
            } else {
                200
            }
        }
        Action::List => {
            if r < 0.004 {
                400
            } else {
                200
            }
        }
        Action::Search => {
            if r < 0.01 {
                400
            } else {
                200
            }
        }
        Action::Create => {
            if r < 0.025 {
                422
            } else if r < 0.035 {
                400
            } else if r < 0.04 {
                409
            } else {
                201
            }
        }
        Action::Update => {
            if r < 0.01 {
                404
            } else if r < 0.02 {
                409
            } else if r < 0.03 {
                422
            } else {
                200
            }
        }
        Action::Delete => {
            if r < 0.05 {
                404
            } else {
                204
            }
        }
        Action::Token => {
            if r < 0.004 {
                401
            } else {
                200
            }
        }
        Action::ExportStart => 202,
        Action::ExportStatus => 200,
        Action::ExportDownload => {
            if r < 0.01 {
                404
            } else {
                200
            }
        }
    }
}

/// Draws a request body size: 0 without a body, else log-normal around the endpoint's median.
pub(crate) fn request_size(endpoint: &Endpoint, rng: &mut Rng) -> u64 {
    if endpoint.request_bytes <= 0.0 {
        return 0;
    }
    rng.log_normal(endpoint.request_bytes, 0.3).round().max(2.0) as u64
}

/// Draws the response body size of a call with this status.
pub(crate) fn response_size(
    endpoint: &Endpoint,
    status: u16,
    page_factor: f64,
    rng: &mut Rng,
) -> u64 {
    let median = match status {
        204 => return 0,
        200..=299 => endpoint.response_bytes * page_factor,
        429 => 110.0,
        504 => return 36,
        500..=599 => 160.0,
        _ => 150.0,
    };
    let sigma = if (200..300).contains(&status) {
        endpoint.response_sigma
    } else {
        0.2
    };
    rng.log_normal(median, sigma).round().max(2.0) as u64
}

/// Draws the latency in milliseconds of a call with this status.
pub(crate) fn latency(endpoint: &Endpoint, status: u16, rng: &mut Rng) -> u32 {
    let value = match status {
        504 => 29_000.0 + rng.below(1_000) as f64,
        502 | 503 => rng.log_normal(40.0, 1.0),
        400..=499 => rng.log_normal(endpoint.latency_ms * 0.4, 0.4),
        _ => rng.log_normal(endpoint.latency_ms, 0.5),
    };
    value.round().clamp(1.0, 120_000.0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::catalog::endpoint_id;

    fn endpoint(name: &str) -> &'static Endpoint {
        &CATALOG[endpoint_id(name).expect("a catalogue endpoint")]
    }

    #[test]
    fn page_factor_reads_page_size() {
        let list = endpoint("customers_list");
        assert_eq!(page_factor(list, Some("page=2&page_size=300")), 3.0);
        assert_eq!(page_factor(list, Some("page=2")), 1.0);
        assert_eq!(
            page_factor(endpoint("customer_get"), Some("page_size=300")),
            1.0
        );
    }

    #[test]
    fn error_responses_are_small() {
        let mut rng = Rng::new(1);
        let download = endpoint("report_download");
        assert_eq!(response_size(download, 504, 1.0, &mut rng), 36);
        assert!(response_size(download, 404, 1.0, &mut rng) < 1_000);
        assert_eq!(response_size(endpoint("order_get"), 204, 1.0, &mut rng), 0);
    }
}
