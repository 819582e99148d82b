//! The simulated B2B API: its endpoints, their sizes and latencies, and
//! the kinds of objects their ids name.

/// Host name of the simulated API.
pub(crate) const API_HOST: &str = "api.tradehub.example";

/// A kind of object with ids in paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Order,
    Invoice,
    Customer,
    /// Products form one catalogue that every partner reads.
    Product,
    Shipment,
    /// Export jobs, numbered from one sequence for every partner.
    Report,
}

impl Resource {
    /// Resources whose ids are allocated to partners in blocks.
    pub(crate) const OWNED: [Resource; 4] = [
        Resource::Order,
        Resource::Invoice,
        Resource::Customer,
        Resource::Shipment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Resource::Order => "orders",
            Resource::Invoice => "invoices",
            Resource::Customer => "customers",
            Resource::Product => "products",
            Resource::Shipment => "shipments",
            Resource::Report => "reports",
        }
    }

    /// Position in [`Resource::OWNED`], for resources allocated in blocks.
    pub(crate) fn owned_index(self) -> Option<usize> {
        Resource::OWNED.iter().position(|owned| *owned == self)
    }
}

/// Kind of operation of an endpoint, which sets its status codes and query string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A paged list.
    List,
    /// One object by id.
    Get,
    Create,
    Update,
    Delete,
    Search,
    Token,
    /// Starts an export job (status 202).
    ExportStart,
    /// Polls an export job.
    ExportStatus,
    /// Downloads a finished export.
    ExportDownload,
}

/// One endpoint of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    /// Stable snake_case name, used in scenario parameters.
    pub name: &'static str,
    pub method: &'static str,
    /// Route template; `{id}` stands for an integer id of `resource`.
    pub route: &'static str,
    pub resource: Option<Resource>,
    pub action: Action,
    /// Median response body size in bytes for a success.
    pub response_bytes: f64,
    /// Shape of the log-normal spread of response sizes.
    pub response_sigma: f64,
    /// Median request body size in bytes; 0 for requests without a body.
    pub request_bytes: f64,
    /// Median latency in milliseconds.
    pub latency_ms: f64,
}

const fn endpoint(
    name: &'static str,
    method: &'static str,
    route: &'static str,
    resource: Option<Resource>,
    action: Action,
    sizes: (f64, f64, f64),
    latency_ms: f64,
) -> Endpoint {
    Endpoint {
        name,
        method,
        route,
        resource,
        action,
        response_bytes: sizes.0,
        response_sigma: sizes.1,
        request_bytes: sizes.2,
        latency_ms,
    }
}

use Action::*;
use Resource::*;

/// Every documented endpoint. Indexes into this array are endpoint ids.
pub static CATALOG: [Endpoint; 25] = [
    endpoint(
        "auth_token",
        "POST",
        "/v1/auth/token",
        None,
        Token,
        (910.0, 0.05, 190.0),
        65.0,
    ),
    endpoint(
        "orders_list",
        "GET",
        "/v1/orders",
        Some(Order),
        List,
        (38_000.0, 0.45, 0.0),
        120.0,
    ),
    endpoint(
        "order_get",
        "GET",
        "/v1/orders/{id}",
        Some(Order),
        Get,
        (2_400.0, 0.35, 0.0),
        45.0,
    ),
    endpoint(
        "order_create",
        "POST",
        "/v1/orders",
        Some(Order),
        Create,
        (1_850.0, 0.3, 1_250.0),
        180.0,
    ),
    endpoint(
        "order_update",
        "PUT",
        "/v1/orders/{id}",
        Some(Order),
        Update,
        (1_900.0, 0.3, 900.0),
        150.0,
    ),
    endpoint(
        "order_delete",
        "DELETE",
        "/v1/orders/{id}",
        Some(Order),
        Delete,
        (0.0, 0.1, 0.0),
        110.0,
    ),
    endpoint(
        "order_lines",
        "GET",
        "/v1/orders/{id}/lines",
        Some(Order),
        Get,
        (4_500.0, 0.6, 0.0),
        60.0,
    ),
    endpoint(
        "invoices_list",
        "GET",
        "/v1/invoices",
        Some(Invoice),
        List,
        (30_000.0, 0.45, 0.0),
        140.0,
    ),
    endpoint(
        "invoice_get",
        "GET",
        "/v1/invoices/{id}",
        Some(Invoice),
        Get,
        (3_100.0, 0.3, 0.0),
        50.0,
    ),
    endpoint(
        "invoice_pdf",
        "GET",
        "/v1/invoices/{id}/pdf",
        Some(Invoice),
        Get,
        (85_000.0, 0.5, 0.0),
        350.0,
    ),
    endpoint(
        "customers_list",
        "GET",
        "/v1/customers",
        Some(Customer),
        List,
        (52_000.0, 0.4, 0.0),
        130.0,
    ),
    endpoint(
        "customer_get",
        "GET",
        "/v1/customers/{id}",
        Some(Customer),
        Get,
        (1_600.0, 0.3, 0.0),
        40.0,
    ),
    endpoint(
        "customer_update",
        "PUT",
        "/v1/customers/{id}",
        Some(Customer),
        Update,
        (1_700.0, 0.3, 800.0),
        140.0,
    ),
    endpoint(
        "products_list",
        "GET",
        "/v1/products",
        Some(Product),
        List,
        (95_000.0, 0.35, 0.0),
        160.0,
    ),
    endpoint(
        "product_get",
        "GET",
        "/v1/products/{id}",
        Some(Product),
        Get,
        (2_200.0, 0.4, 0.0),
        35.0,
    ),
    endpoint(
        "catalog_search",
        "GET",
        "/v1/catalog/search",
        Some(Product),
        Search,
        (12_000.0, 0.6, 0.0),
        220.0,
    ),
    endpoint(
        "shipments_list",
        "GET",
        "/v1/shipments",
        Some(Shipment),
        List,
        (3_000.0, 0.5, 0.0),
        70.0,
    ),
    endpoint(
        "shipment_get",
        "GET",
        "/v1/shipments/{id}",
        Some(Shipment),
        Get,
        (1_400.0, 0.3, 0.0),
        40.0,
    ),
    endpoint(
        "shipment_create",
        "POST",
        "/v1/shipments",
        Some(Shipment),
        Create,
        (1_300.0, 0.2, 1_100.0),
        170.0,
    ),
    endpoint(
        "report_export_start",
        "POST",
        "/v1/reports/export",
        Some(Report),
        ExportStart,
        (420.0, 0.1, 260.0),
        90.0,
    ),
    endpoint(
        "report_status",
        "GET",
        "/v1/reports/{id}",
        Some(Report),
        ExportStatus,
        (380.0, 0.1, 0.0),
        30.0,
    ),
    endpoint(
        "report_download",
        "GET",
        "/v1/reports/{id}/download",
        Some(Report),
        ExportDownload,
        (4_000_000.0, 0.9, 0.0),
        2_500.0,
    ),
    endpoint(
        "webhooks_list",
        "GET",
        "/v1/webhooks",
        None,
        List,
        (1_100.0, 0.3, 0.0),
        35.0,
    ),
    endpoint(
        "webhook_create",
        "POST",
        "/v1/webhooks",
        None,
        Create,
        (600.0, 0.1, 340.0),
        80.0,
    ),
    endpoint(
        "order_get_v2",
        "GET",
        "/v2/orders/{id}",
        Some(Order),
        Get,
        (2_800.0, 0.35, 0.0),
        40.0,
    ),
];

/// Returns the id of the endpoint with this name.
pub(crate) fn endpoint_id(name: &str) -> Option<usize> {
    CATALOG.iter().position(|endpoint| endpoint.name == name)
}

/// Renders a route with an id in place of `{id}`.
pub(crate) fn render_path(route: &str, id: u64) -> String {
    match route.split_once("{id}") {
        Some((before, after)) => format!("{before}{id}{after}"),
        None => route.to_string(),
    }
}

/// Words that partners search the catalogue for.
pub(crate) const SEARCH_WORDS: [&str; 20] = [
    "bolt", "valve", "cable", "sensor", "pallet", "filter", "bearing", "pump", "gasket", "hose",
    "relay", "switch", "adapter", "bracket", "motor", "fuse", "clamp", "panel", "seal", "spring",
];

/// Undocumented paths that probing tries, with the status the API returns.
/// `{id}` is replaced by an integer.
pub(crate) const PROBE_PATHS: [(&str, u16); 30] = [
    ("/admin", 403),
    ("/admin/login", 404),
    ("/admin/users", 403),
    ("/internal/health", 404),
    ("/internal/config", 403),
    ("/internal/metrics", 404),
    ("/v0/orders", 404),
    ("/v0/orders/{id}", 404),
    ("/v0/customers", 404),
    ("/v2/customers", 404),
    ("/v3/orders", 404),
    ("/debug/vars", 404),
    ("/debug/pprof/", 404),
    ("/actuator", 404),
    ("/actuator/env", 404),
    ("/actuator/health", 200),
    ("/.env", 404),
    ("/.git/config", 404),
    ("/server-status", 403),
    ("/swagger.json", 404),
    ("/openapi.json", 200),
    ("/api-docs", 404),
    ("/graphql", 404),
    ("/v1/admin/api-keys", 403),
    ("/v1/users", 404),
    ("/v1/customers/export", 404),
    ("/v1/orders/all", 404),
    ("/v1/internal/partners", 403),
    ("/backup.zip", 404),
    ("/v1/orders/{id}/history", 404),
];

/// Route that API Gateway and OpenTelemetry report for a path no resource matches.
pub(crate) const CATCH_ALL_ROUTE: &str = "/{proxy+}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_names_unique() {
        for (index, endpoint) in CATALOG.iter().enumerate() {
            assert_eq!(endpoint_id(endpoint.name), Some(index), "{}", endpoint.name);
        }
    }

    #[test]
    fn render_path_replaces_id() {
        assert_eq!(
            render_path("/v1/orders/{id}/lines", 42),
            "/v1/orders/42/lines"
        );
        assert_eq!(render_path("/v1/orders", 42), "/v1/orders");
    }
}
