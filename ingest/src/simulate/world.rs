//! The simulated partners, their apps and the events that affect everyone.
//!
//! [`World::build`] draws everything from the seed: partner sizes,
//! profiles, time zones, apps with their keys, networks and user agents,
//! blocks of object ids, deploy-day error bursts, one partner whose volume
//! doubles in week 3, and SDK upgrades. The world contains no events,
//! and the traffic module turns it into calls hour by hour.

use super::SimulateError;
use super::catalog::{CATALOG, Resource, endpoint_id};
use super::clock::{DAY_MS, HOUR_MS, LocalTime, ZONES, Zone, weekday};
use super::rng::{Rng, exp, ln};

/// Streams of the seed, so each part of the simulation draws its own numbers.
pub(crate) mod stream {
    pub(crate) const WORLD: u64 = 1;
    pub(crate) const TRAFFIC: u64 = 2;
    pub(crate) const DAY_JITTER: u64 = 3;
    pub(crate) const BATCH: u64 = 4;
    pub(crate) const PLAN: u64 = 5;
    pub(crate) const SCENARIO: u64 = 6;
    pub(crate) const NETWORKS: u64 = 7;
}

/// Smallest and largest busiest-hour call rate of a partner, before `--scale`.
const PEAK_RATE_RANGE: (f64, f64) = (8.0, 800.0);

/// Number of products in the shared catalogue, and the first product id.
pub(crate) const PRODUCT_COUNT: u64 = 40_000;
pub(crate) const FIRST_PRODUCT_ID: u64 = 300_000;

/// First id of each resource in [`Resource::OWNED`] order.
const FIRST_OWNED_ID: [u64; 4] = [4_100_000, 7_300_000, 1_200_000, 9_800_000];

/// Share of a partner's id block that exists at the start and at the end of a simulation.
const EXISTING_SHARE: (f64, f64) = (0.70, 0.85);

/// Factor of the one partner whose volume grows in week 3.
pub(crate) const GROWTH_FACTOR: f64 = 2.0;

/// The daily and weekly shape of an app's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rhythm {
    /// Office hours of the partner's zone; weekends and holidays nearly silent.
    BusinessHours,
    /// Mornings to late evenings, with quieter weekends.
    ExtendedHours,
    /// Traffic at every hour, with a shallow daytime peak.
    AroundTheClock,
}

impl Rhythm {
    pub fn name(self) -> &'static str {
        match self {
            Rhythm::BusinessHours => "business_hours",
            Rhythm::ExtendedHours => "extended_hours",
            Rhythm::AroundTheClock => "around_the_clock",
        }
    }

    /// Share of the busiest hour's rate at each local hour of a working day.
    fn hourly(self) -> &'static [f64; 24] {
        match self {
            Rhythm::BusinessHours => &[
                0.02, 0.015, 0.01, 0.01, 0.01, 0.02, 0.06, 0.25, 0.65, 0.9, 1.0, 0.95, 0.7, 0.85,
                1.0, 0.95, 0.8, 0.55, 0.3, 0.15, 0.08, 0.05, 0.04, 0.03,
            ],
            Rhythm::ExtendedHours => &[
                0.05, 0.03, 0.02, 0.02, 0.02, 0.04, 0.1, 0.3, 0.6, 0.8, 0.9, 1.0, 1.0, 0.95, 0.9,
                0.9, 0.85, 0.8, 0.7, 0.6, 0.45, 0.3, 0.15, 0.08,
            ],
            Rhythm::AroundTheClock => &[
                0.55, 0.5, 0.45, 0.45, 0.45, 0.5, 0.6, 0.7, 0.85, 0.95, 1.0, 1.0, 1.0, 1.0, 1.0,
                0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55,
            ],
        }
    }

    /// Factor of a Saturday, and of a Sunday or holiday.
    fn day_off(self) -> (f64, f64) {
        match self {
            Rhythm::BusinessHours => (0.08, 0.05),
            Rhythm::ExtendedHours => (0.45, 0.3),
            Rhythm::AroundTheClock => (0.85, 0.8),
        }
    }

    /// Share of the busiest hour's rate at a local time.
    pub(crate) fn weight(self, local: &LocalTime) -> f64 {
        let hourly = self.hourly()[local.hour.min(23) as usize];
        let (saturday, sunday) = self.day_off();
        if local.holiday || local.weekday == 6 {
            hourly * sunday
        } else if local.weekday == 5 {
            hourly * saturday
        } else {
            hourly
        }
    }
}

/// Commercial tier of a partner, from its volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Starter,
    Business,
    Enterprise,
}

impl Tier {
    pub fn name(self) -> &'static str {
        match self {
            Tier::Starter => "starter",
            Tier::Business => "business",
            Tier::Enterprise => "enterprise",
        }
    }

    /// Share of calls that get a 429 because the partner exceeded its rate limit.
    pub(crate) fn throttle_share(self) -> f64 {
        match self {
            Tier::Starter => 0.004,
            Tier::Business => 0.001,
            Tier::Enterprise => 0.000_2,
        }
    }
}

/// Kind of integration a partner runs, which sets its endpoint mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// Orders, invoices and customers from an ERP, often with a nightly sync.
    ErpIntegration,
    /// Reads the product catalogue to mirror it; never writes.
    CatalogMirror,
    /// A marketplace that reads the catalogue and places orders.
    Marketplace,
    /// A carrier or warehouse that reads orders and books shipments.
    Logistics,
    /// Reads invoices and customers and exports reports; never writes.
    FinanceAnalytics,
    /// A reseller portal that searches, orders and updates customers.
    ResellerPortal,
    /// An auditor that reads orders and invoices and exports reports; never writes.
    Auditor,
}

struct ProfileDefinition {
    profile: Profile,
    name: &'static str,
    rhythm: Rhythm,
    /// Endpoint names and weights of the daytime mix.
    mix: &'static [(&'static str, f64)],
    /// Probability that the partner's first app runs a nightly batch.
    batch_chance: f64,
    /// Endpoint names and weights of the nightly batch.
    batch_mix: &'static [(&'static str, f64)],
    /// Names of the partner's apps, in order.
    app_roles: [&'static str; 3],
}

static PROFILES: [ProfileDefinition; 7] = [
    ProfileDefinition {
        profile: Profile::ErpIntegration,
        name: "erp_integration",
        rhythm: Rhythm::BusinessHours,
        mix: &[
            ("orders_list", 10.0),
            ("order_get", 25.0),
            ("order_create", 8.0),
            ("order_update", 4.0),
            ("order_lines", 6.0),
            ("invoices_list", 5.0),
            ("invoice_get", 10.0),
            ("customers_list", 2.0),
            ("customer_get", 8.0),
            ("shipments_list", 4.0),
            ("auth_token", 2.0),
            ("webhooks_list", 0.3),
        ],
        batch_chance: 0.7,
        batch_mix: &[
            ("orders_list", 10.0),
            ("order_get", 40.0),
            ("invoices_list", 5.0),
            ("invoice_get", 30.0),
            ("auth_token", 1.0),
        ],
        app_roles: ["erp-sync", "portal", "billing"],
    },
    ProfileDefinition {
        profile: Profile::CatalogMirror,
        name: "catalog_mirror",
        rhythm: Rhythm::AroundTheClock,
        mix: &[
            ("products_list", 35.0),
            ("product_get", 45.0),
            ("catalog_search", 15.0),
            ("auth_token", 2.0),
        ],
        batch_chance: 0.5,
        batch_mix: &[
            ("products_list", 30.0),
            ("product_get", 60.0),
            ("auth_token", 1.0),
        ],
        app_roles: ["catalog-sync", "pricing", "search"],
    },
    ProfileDefinition {
        profile: Profile::Marketplace,
        name: "marketplace",
        rhythm: Rhythm::AroundTheClock,
        mix: &[
            ("products_list", 20.0),
            ("product_get", 40.0),
            ("catalog_search", 25.0),
            ("order_create", 5.0),
            ("order_get", 8.0),
            ("auth_token", 2.0),
            ("webhooks_list", 0.2),
        ],
        batch_chance: 0.2,
        batch_mix: &[("products_list", 40.0), ("auth_token", 1.0)],
        app_roles: ["storefront", "order-bridge", "catalog-sync"],
    },
    ProfileDefinition {
        profile: Profile::Logistics,
        name: "logistics",
        rhythm: Rhythm::ExtendedHours,
        mix: &[
            ("shipments_list", 15.0),
            ("shipment_get", 30.0),
            ("shipment_create", 12.0),
            ("order_get", 25.0),
            ("order_lines", 10.0),
            ("order_get_v2", 4.0),
            ("auth_token", 2.0),
            ("webhook_create", 0.1),
        ],
        batch_chance: 0.3,
        batch_mix: &[
            ("shipments_list", 20.0),
            ("shipment_get", 40.0),
            ("auth_token", 1.0),
        ],
        app_roles: ["warehouse", "tracking", "dispatch"],
    },
    ProfileDefinition {
        profile: Profile::FinanceAnalytics,
        name: "finance_analytics",
        rhythm: Rhythm::BusinessHours,
        mix: &[
            ("invoices_list", 20.0),
            ("invoice_get", 25.0),
            ("invoice_pdf", 8.0),
            ("customers_list", 10.0),
            ("customer_get", 15.0),
            ("report_export_start", 1.5),
            ("auth_token", 2.0),
        ],
        batch_chance: 0.8,
        batch_mix: &[
            ("invoices_list", 20.0),
            ("invoice_get", 40.0),
            ("report_export_start", 2.0),
            ("auth_token", 1.0),
        ],
        app_roles: ["reporting", "ledger-sync", "dashboard"],
    },
    ProfileDefinition {
        profile: Profile::ResellerPortal,
        name: "reseller_portal",
        rhythm: Rhythm::ExtendedHours,
        mix: &[
            ("catalog_search", 30.0),
            ("product_get", 25.0),
            ("order_create", 10.0),
            ("order_get", 15.0),
            ("customers_list", 3.0),
            ("customer_get", 10.0),
            ("customer_update", 3.0),
            ("auth_token", 3.0),
        ],
        batch_chance: 0.1,
        batch_mix: &[("customers_list", 10.0), ("auth_token", 1.0)],
        app_roles: ["portal", "mobile-backend", "crm-sync"],
    },
    ProfileDefinition {
        profile: Profile::Auditor,
        name: "auditor",
        rhythm: Rhythm::BusinessHours,
        mix: &[
            ("orders_list", 10.0),
            ("order_get", 20.0),
            ("invoices_list", 10.0),
            ("invoice_get", 20.0),
            ("report_export_start", 2.0),
            ("auth_token", 2.0),
        ],
        batch_chance: 0.0,
        batch_mix: &[],
        app_roles: ["audit", "compliance", "sampling"],
    },
];

impl Profile {
    fn definition(self) -> &'static ProfileDefinition {
        PROFILES
            .iter()
            .find(|definition| definition.profile == self)
            .unwrap_or(&PROFILES[0])
    }

    pub fn name(self) -> &'static str {
        self.definition().name
    }
}

/// A block of object ids that belongs to one partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdBlock {
    pub first: u64,
    pub size: u64,
}

impl IdBlock {
    /// Number of ids of the block that exist at `fraction` (0 to 1) of the simulation.
    pub(crate) fn existing(&self, fraction: f64) -> u64 {
        let share =
            EXISTING_SHARE.0 + (EXISTING_SHARE.1 - EXISTING_SHARE.0) * fraction.clamp(0.0, 1.0);
        ((self.size as f64 * share) as u64).max(1)
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        id >= self.first && id - self.first < self.size
    }
}

/// The products a partner reads: positions `0..count` of an affine
/// permutation `position -> (stride * position + offset) mod PRODUCT_COUNT`
/// of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductInterest {
    pub stride: u64,
    pub offset: u64,
    pub count: u64,
}

impl ProductInterest {
    /// Product id at a position of the partner's permutation.
    pub(crate) fn product(&self, position: u64) -> u64 {
        let index = (u128::from(self.stride) * u128::from(position) + u128::from(self.offset))
            % u128::from(PRODUCT_COUNT);
        FIRST_PRODUCT_ID + index as u64
    }
}

/// A company that integrates with the API.
#[derive(Debug, Clone)]
pub struct Partner {
    /// `p01`, `p02`, ...
    pub id: String,
    pub name: String,
    /// The name in lowercase with dashes, used in app names.
    pub slug: String,
    pub tier: Tier,
    pub profile: Profile,
    pub zone: Zone,
    /// Calls per hour at the busiest weekday hour, all apps together, before `--scale`.
    pub peak_rate: f64,
    /// Indexes into [`World::apps`].
    pub apps: Vec<usize>,
    /// /24 networks, as their first three octets.
    pub networks: Vec<[u8; 3]>,
    /// Id blocks in [`Resource::OWNED`] order.
    pub id_blocks: [IdBlock; 4],
    pub products: ProductInterest,
}

impl Partner {
    /// Id block of an owned resource.
    pub fn block(&self, resource: Resource) -> Option<IdBlock> {
        resource
            .owned_index()
            .and_then(|index| self.id_blocks.get(index).copied())
    }
}

/// A user agent whose version may change once, when the app upgrades its SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub before_upgrade: String,
    pub after_upgrade: String,
}

/// A nightly batch job of an app.
#[derive(Debug, Clone)]
pub struct BatchJob {
    /// Local hour at which the job starts.
    pub local_hour: u32,
    /// Expected calls per run, before `--scale`.
    pub calls: f64,
    /// Minutes over which the calls spread.
    pub minutes: u32,
    pub weekdays_only: bool,
    /// Endpoint ids and weights.
    pub mix: Vec<(usize, f64)>,
}

/// One client application of a partner, with its own credential.
#[derive(Debug, Clone)]
pub struct App {
    pub partner: usize,
    /// `<partner slug>-<role>`; also the OAuth client id that OpenTelemetry spans name.
    pub name: String,
    /// API Gateway API key id: ten lowercase letters and digits.
    pub api_key_id: String,
    /// Kong consumer id: a UUID.
    pub kong_consumer_id: String,
    /// Client addresses; the first one carries most of the calls.
    pub ips: Vec<[u8; 4]>,
    pub user_agents: Vec<UserAgent>,
    /// Share of the partner's volume.
    pub share: f64,
    pub rhythm: Rhythm,
    /// Endpoint ids and weights of the daytime mix.
    pub mix: Vec<(usize, f64)>,
    pub batch: Option<BatchJob>,
    /// When the first user agent switches to its upgraded version.
    pub sdk_upgrade_ms: Option<i64>,
}

impl App {
    /// Returns whether the app ever sends PUT, PATCH or DELETE.
    pub fn writes(&self) -> bool {
        let batch = self.batch.iter().flat_map(|batch| batch.mix.iter());
        self.mix.iter().chain(batch).any(|(endpoint, _)| {
            CATALOG
                .get(*endpoint)
                .is_some_and(|endpoint| matches!(endpoint.method, "PUT" | "PATCH" | "DELETE"))
        })
    }

    /// Weight of an endpoint in the daytime mix.
    pub(crate) fn weight_of(&self, endpoint: usize) -> f64 {
        self.mix
            .iter()
            .filter(|(id, _)| *id == endpoint)
            .map(|(_, weight)| *weight)
            .sum()
    }

    /// Share of the daytime mix that goes to an endpoint.
    pub(crate) fn share_of(&self, endpoint: usize) -> f64 {
        let total: f64 = self.mix.iter().map(|(_, weight)| *weight).sum();
        if total > 0.0 {
            self.weight_of(endpoint) / total
        } else {
            0.0
        }
    }
}

/// A deploy after which the API returns 502 and 503 for a few minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorBurst {
    pub start_ms: i64,
    pub end_ms: i64,
    /// Share of calls that get a 502 or 503 during the burst.
    pub error_share: f64,
}

/// The partner whose volume steps up in week 3 and stays there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    pub partner: usize,
    pub from_ms: i64,
    pub factor: f64,
}

/// Everything the traffic is drawn from.
#[derive(Debug, Clone)]
pub struct World {
    pub seed: u64,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Multiplier of every partner's volume.
    pub scale: f64,
    pub partners: Vec<Partner>,
    pub apps: Vec<App>,
    pub error_bursts: Vec<ErrorBurst>,
    pub growth: Option<Growth>,
    /// /24 networks that no partner uses, for attackers, first three octets each.
    pub(crate) spare_networks: Vec<[u8; 3]>,
    /// API Gateway API id.
    pub api_id: String,
}

const NAME_PREFIXES: [&str; 26] = [
    "Alder", "Birch", "Cobalt", "Delta", "Ember", "Fjord", "Granite", "Harbor", "Indigo",
    "Juniper", "Kestrel", "Lumen", "Meridian", "Nimbus", "Orchard", "Pioneer", "Quarry", "Ridge",
    "Summit", "Tidal", "Umber", "Vertex", "Willow", "Xylem", "Yarrow", "Zephyr",
];
const NAME_SUFFIXES: [&str; 15] = [
    "Supply",
    "Logistics",
    "Retail",
    "Foods",
    "Industrial",
    "Health",
    "Parts",
    "Systems",
    "Trading",
    "Freight",
    "Outfitters",
    "Pharma",
    "Electric",
    "Textiles",
    "Marine",
];

/// Largest number of partners a world can have: every partner needs one or
/// two /24 networks of 198.18.0.0/15, which has 512, and attackers need some.
pub const MAX_PARTNERS: usize = 150;

/// Client libraries: product, version and the text after the version.
const CLIENT_LIBRARIES: [(&str, (u32, u32, u32), &str); 10] = [
    ("tradehub-sdk-java", (3, 4, 1), " (Java/17.0.10)"),
    ("tradehub-sdk-python", (2, 8, 0), " python/3.11.8"),
    ("tradehub-sdk-node", (5, 1, 2), " node/20.11.1"),
    ("tradehub-sdk-dotnet", (1, 9, 3), " .NET/8.0.2"),
    ("Apache-HttpClient", (5, 3, 1), " (Java/17.0.9)"),
    ("okhttp", (4, 12, 0), ""),
    ("python-requests", (2, 31, 0), ""),
    ("axios", (1, 6, 7), ""),
    ("Go-http-client", (1, 1, 0), ""),
    ("curl", (8, 5, 0), ""),
];

fn format_agent(product: &str, (major, minor, patch): (u32, u32, u32), suffix: &str) -> String {
    if product == "Go-http-client" {
        // Go's client names the HTTP version, not its own.
        return format!("{product}/{major}.{minor}{suffix}");
    }
    format!("{product}/{major}.{minor}.{patch}{suffix}")
}

/// Options that shape a world.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorldShape {
    pub seed: u64,
    pub start_ms: i64,
    pub weeks: u32,
    pub partners: usize,
    pub scale: f64,
}

impl World {
    /// Draws a world from the seed.
    pub(crate) fn build(shape: WorldShape) -> Result<World, SimulateError> {
        let mut rng = Rng::stream(shape.seed, &[stream::WORLD]);
        let end_ms = shape.start_ms + i64::from(shape.weeks) * 7 * DAY_MS;
        let mut networks = network_pool(shape.seed);
        let names = partner_names(&mut rng, shape.partners);

        let mut partners = Vec::with_capacity(shape.partners);
        let mut apps = Vec::new();
        for (index, name) in names.into_iter().enumerate() {
            let partner = build_partner(&mut rng, index, name, &mut networks)?;
            partners.push(partner);
        }
        allocate_id_blocks(&mut rng, &mut partners);
        for (index, partner) in partners.iter_mut().enumerate() {
            let new_apps = build_apps(&mut rng, index, partner, shape, end_ms);
            partner.apps = (apps.len()..apps.len() + new_apps.len()).collect();
            apps.extend(new_apps);
        }
        let error_bursts = plan_error_bursts(&mut rng, shape.start_ms, end_ms);
        let growth = plan_growth(&mut rng, &partners, shape);

        Ok(World {
            seed: shape.seed,
            start_ms: shape.start_ms,
            end_ms,
            scale: shape.scale,
            partners,
            apps,
            error_bursts,
            growth,
            spare_networks: networks,
            api_id: random_key(&mut rng, 10),
        })
    }

    /// Partner of an app.
    pub fn partner_of(&self, app: usize) -> Option<&Partner> {
        self.apps
            .get(app)
            .and_then(|app| self.partners.get(app.partner))
    }

    /// Fraction of the simulated period that has passed at `ms`, 0 to 1.
    pub(crate) fn progress(&self, ms: i64) -> f64 {
        let span = (self.end_ms - self.start_ms).max(1) as f64;
        ((ms - self.start_ms) as f64 / span).clamp(0.0, 1.0)
    }

    /// Volume factor of a partner at `ms`: the week-3 growth, when it applies.
    pub(crate) fn growth_factor(&self, partner: usize, ms: i64) -> f64 {
        match self.growth {
            Some(growth) if growth.partner == partner && ms >= growth.from_ms => growth.factor,
            _ => 1.0,
        }
    }

    /// Expected daytime calls of an app in the hour that starts at `hour_ms`,
    /// with `--scale`, without day-to-day jitter and batch jobs.
    pub(crate) fn expected_rate(&self, app_index: usize, hour_ms: i64) -> f64 {
        let Some(app) = self.apps.get(app_index) else {
            return 0.0;
        };
        let Some(partner) = self.partners.get(app.partner) else {
            return 0.0;
        };
        let local = partner.zone.local(hour_ms + HOUR_MS / 2);
        partner.peak_rate
            * app.share
            * app.rhythm.weight(&local)
            * self.growth_factor(app.partner, hour_ms)
            * self.scale
    }

    /// Takes an unused /24 network for an attacker.
    pub(crate) fn take_spare_network(&mut self) -> Result<[u8; 3], SimulateError> {
        self.spare_networks
            .pop()
            .ok_or(SimulateError::TooLarge(
                "the simulation ran out of unused /24 networks in 198.18.0.0/15 for attackers; use fewer partners or scenarios",
            ))
    }

    /// Local time of a partner at `ms`.
    pub(crate) fn local(&self, partner: usize, ms: i64) -> Option<LocalTime> {
        self.partners
            .get(partner)
            .map(|partner| partner.zone.local(ms))
    }
}

/// Lists the /24 networks of 198.18.0.0/15, the range RFC 2544 sets aside for
/// benchmarks, in a seeded order. Partners take the first networks of that
/// order and attackers the next ones, so both look alike. The order is
/// stored reversed, so taking one is a `pop`.
fn network_pool(seed: u64) -> Vec<[u8; 3]> {
    let mut pool: Vec<[u8; 3]> = (0..512u32)
        .map(|index| [198, 18 + (index / 256) as u8, (index % 256) as u8])
        .collect();
    Rng::stream(seed, &[stream::NETWORKS]).shuffle(&mut pool);
    pool.reverse();
    pool
}

fn partner_names(rng: &mut Rng, count: usize) -> Vec<String> {
    let mut names: Vec<String> = NAME_PREFIXES
        .iter()
        .flat_map(|prefix| {
            NAME_SUFFIXES
                .iter()
                .map(move |suffix| format!("{prefix} {suffix}"))
        })
        .collect();
    rng.shuffle(&mut names);
    names.truncate(count);
    names
}

fn slug(name: &str) -> String {
    name.to_ascii_lowercase().replace(' ', "-")
}

fn build_partner(
    rng: &mut Rng,
    index: usize,
    name: String,
    networks: &mut Vec<[u8; 3]>,
) -> Result<Partner, SimulateError> {
    let (low, high) = PEAK_RATE_RANGE;
    let peak_rate = exp(ln(low) + rng.unit() * (ln(high) - ln(low)));
    let tier = if peak_rate >= 300.0 {
        Tier::Enterprise
    } else if peak_rate >= 60.0 {
        Tier::Business
    } else {
        Tier::Starter
    };
    let profile = PROFILES[rng.index(PROFILES.len())].profile;
    let zone = ZONES[rng.index(ZONES.len())];
    let network_count = 1 + rng.index(2);
    let mut partner_networks = Vec::with_capacity(network_count);
    for _ in 0..network_count {
        // Taken from the end, which is the front of the seeded order.
        let network = networks.pop().ok_or(SimulateError::TooLarge(
            "the partners need more /24 networks than 198.18.0.0/15 has",
        ))?;
        partner_networks.push(network);
    }
    let products = ProductInterest {
        stride: coprime_stride(rng),
        offset: rng.below(PRODUCT_COUNT),
        count: 200 + rng.below(2_800),
    };
    Ok(Partner {
        id: format!("p{:02}", index + 1),
        slug: slug(&name),
        name,
        tier,
        profile,
        zone,
        peak_rate,
        apps: Vec::new(),
        networks: partner_networks,
        id_blocks: [IdBlock { first: 0, size: 0 }; 4],
        products,
    })
}

/// Draws a stride coprime with [`PRODUCT_COUNT`] (2^6 * 5^4): odd and not a multiple of 5.
fn coprime_stride(rng: &mut Rng) -> u64 {
    loop {
        let stride = 1 + rng.below(PRODUCT_COUNT - 1);
        if stride % 2 == 1 && !stride.is_multiple_of(5) {
            return stride;
        }
    }
}

/// Gives each partner a block of ids per owned resource, in a seeded order
/// of partners with unallocated gaps between blocks.
fn allocate_id_blocks(rng: &mut Rng, partners: &mut [Partner]) {
    for (slot, first_id) in FIRST_OWNED_ID.iter().enumerate() {
        let mut order: Vec<usize> = (0..partners.len()).collect();
        rng.shuffle(&mut order);
        let mut next = *first_id;
        for index in order {
            let partner = &mut partners[index];
            let size = ((partner.peak_rate * 40.0) as u64).clamp(5_000, 60_000);
            partner.id_blocks[slot] = IdBlock { first: next, size };
            let gap = (size as f64 * rng.uniform(0.05, 0.3)) as u64;
            next += size + gap;
        }
    }
}

fn random_key(rng: &mut Rng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| char::from(ALPHABET[rng.index(ALPHABET.len())]))
        .collect()
}

fn random_uuid(rng: &mut Rng) -> String {
    let high = rng.next_u64();
    let low = rng.next_u64();
    // Version 4, variant 1.
    let high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000;
    let low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}

fn build_apps(
    rng: &mut Rng,
    partner_index: usize,
    partner: &Partner,
    shape: WorldShape,
    end_ms: i64,
) -> Vec<App> {
    let definition = partner.profile.definition();
    let count = 1 + rng.index(3);
    let raw_shares: Vec<f64> = (0..count)
        .map(|position| rng.uniform(0.3, 1.0) / (position as f64 + 1.0))
        .collect();
    let share_total: f64 = raw_shares.iter().sum();

    let mut apps = Vec::with_capacity(count);
    for (position, raw_share) in raw_shares.iter().enumerate() {
        let role = definition.app_roles[position.min(2)];
        let rhythm = if position == 0 || rng.chance(0.6) {
            definition.rhythm
        } else {
            [
                Rhythm::BusinessHours,
                Rhythm::ExtendedHours,
                Rhythm::AroundTheClock,
            ][rng.index(3)]
        };
        let batch = (position == 0 && rng.chance(definition.batch_chance))
            .then(|| build_batch(rng, partner, definition));
        apps.push(App {
            partner: partner_index,
            name: format!("{}-{role}", partner.slug),
            api_key_id: random_key(rng, 10),
            kong_consumer_id: random_uuid(rng),
            ips: app_ips(rng, partner),
            user_agents: app_user_agents(rng),
            share: raw_share / share_total,
            rhythm,
            mix: app_mix(rng, definition.mix),
            batch,
            sdk_upgrade_ms: sdk_upgrade(rng, partner, shape, end_ms),
        });
    }
    apps
}

fn build_batch(rng: &mut Rng, partner: &Partner, definition: &ProfileDefinition) -> BatchJob {
    BatchJob {
        local_hour: 1 + rng.below(4) as u32,
        calls: partner.peak_rate * rng.uniform(0.5, 2.0),
        minutes: 15 + rng.below(30) as u32,
        weekdays_only: rng.chance(0.5),
        mix: resolve_mix(definition.batch_mix),
    }
}

fn resolve_mix(names: &[(&str, f64)]) -> Vec<(usize, f64)> {
    names
        .iter()
        .filter_map(|(name, weight)| endpoint_id(name).map(|id| (id, *weight)))
        .collect()
}

/// Perturbs a profile's mix for one app: weights vary, and some endpoints
/// are left out, keeping at least three and always the heaviest.
fn app_mix(rng: &mut Rng, names: &[(&str, f64)]) -> Vec<(usize, f64)> {
    let base = resolve_mix(names);
    let heaviest = base
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.1.total_cmp(&b.1.1))
        .map(|(position, _)| position)
        .unwrap_or(0);
    let mut mix = Vec::with_capacity(base.len());
    for (position, (endpoint, weight)) in base.iter().enumerate() {
        let keep = position == heaviest || base.len() <= 3 || !rng.chance(0.2);
        if keep {
            mix.push((*endpoint, weight * rng.log_normal(1.0, 0.4)));
        }
    }
    for (endpoint, weight) in &base {
        if mix.len() >= 3 {
            break;
        }
        if !mix.iter().any(|(kept, _)| kept == endpoint) {
            mix.push((*endpoint, *weight));
        }
    }
    mix
}

fn app_ips(rng: &mut Rng, partner: &Partner) -> Vec<[u8; 4]> {
    let count = 1 + rng.index(4);
    let mut ips: Vec<[u8; 4]> = Vec::with_capacity(count);
    while ips.len() < count {
        let Some(network) = rng.pick(&partner.networks) else {
            break;
        };
        let ip = [
            network[0],
            network[1],
            network[2],
            10 + rng.below(240) as u8,
        ];
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips
}

fn app_user_agents(rng: &mut Rng) -> Vec<UserAgent> {
    let count = if rng.chance(0.3) { 2 } else { 1 };
    let mut agents = Vec::with_capacity(count);
    for _ in 0..count {
        let (product, (major, minor, patch), suffix) =
            CLIENT_LIBRARIES[rng.index(CLIENT_LIBRARIES.len())];
        let minor = minor.saturating_sub(rng.below(3) as u32);
        let before = (major, minor, patch);
        let after = (major, minor + 1, 0);
        agents.push(UserAgent {
            before_upgrade: format_agent(product, before, suffix),
            after_upgrade: format_agent(product, after, suffix),
        });
    }
    agents
}

/// About a third of the apps upgrade their SDK once, on a working day from week 2 on.
fn sdk_upgrade(rng: &mut Rng, partner: &Partner, shape: WorldShape, end_ms: i64) -> Option<i64> {
    let days = i64::from(shape.weeks) * 7;
    if days < 10 || !rng.chance(0.35) {
        return None;
    }
    let day = 7 + rng.between(0, days - 10);
    let utc_day = shape.start_ms.div_euclid(DAY_MS) + day;
    let local_day = partner.zone.local(utc_day * DAY_MS + 12 * HOUR_MS).day;
    let ms = partner
        .zone
        .utc_of_local(local_day, 9 + rng.below(8) as u32);
    (ms < end_ms).then_some(ms)
}

/// Deploys on Tuesdays and Thursdays at about 14:00 UTC; about 60% of them
/// cause a burst of 5xx for 5 to 20 minutes.
fn plan_error_bursts(rng: &mut Rng, start_ms: i64, end_ms: i64) -> Vec<ErrorBurst> {
    let mut bursts = Vec::new();
    let first_day = start_ms.div_euclid(DAY_MS);
    let last_day = (end_ms - 1).div_euclid(DAY_MS);
    for day in first_day..=last_day {
        if !matches!(weekday(day), 1 | 3) {
            continue;
        }
        let deploy_ms = day * DAY_MS + 14 * HOUR_MS + rng.below(90) as i64 * 60_000;
        let burst = rng.chance(0.6);
        let minutes = 5 + rng.below(16) as i64;
        let error_share = rng.uniform(0.08, 0.3);
        if burst && deploy_ms >= start_ms && deploy_ms < end_ms {
            bursts.push(ErrorBurst {
                start_ms: deploy_ms,
                end_ms: deploy_ms + minutes * 60_000,
                error_share,
            });
        }
    }
    bursts
}

/// Picks a mid-sized partner whose volume doubles early in week 3; none
/// when the simulation is shorter than three weeks or has one partner.
fn plan_growth(rng: &mut Rng, partners: &[Partner], shape: WorldShape) -> Option<Growth> {
    if shape.weeks < 3 || partners.len() < 2 {
        return None;
    }
    let mut by_rate: Vec<usize> = (0..partners.len()).collect();
    by_rate.sort_by(|a, b| partners[*a].peak_rate.total_cmp(&partners[*b].peak_rate));
    let middle = by_rate.len() / 2;
    let low = middle.saturating_sub(2);
    let high = (middle + 2).min(by_rate.len() - 1);
    let partner = by_rate[rng.between(low as i64, high as i64) as usize];
    let day = 14 + rng.below(2) as i64;
    let zone = partners[partner].zone;
    let local_day = zone.local(shape.start_ms + day * DAY_MS + 12 * HOUR_MS).day;
    Some(Growth {
        partner,
        from_ms: zone.utc_of_local(local_day, 6),
        factor: GROWTH_FACTOR,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(partners: usize) -> WorldShape {
        WorldShape {
            seed: 9,
            start_ms: super::super::clock::days_from_civil(2025, 4, 7) * DAY_MS,
            weeks: 5,
            partners,
            scale: 1.0,
        }
    }

    #[test]
    fn world_has_requested_partners() {
        let world = World::build(shape(30)).expect("world builds");
        assert_eq!(world.partners.len(), 30);
        let apps: usize = world.partners.iter().map(|p| p.apps.len()).sum();
        assert_eq!(apps, world.apps.len());
        for partner in &world.partners {
            assert!((1..=3).contains(&partner.apps.len()), "{}", partner.id);
        }
        let rates: Vec<f64> = world.partners.iter().map(|p| p.peak_rate).collect();
        let max = rates.iter().cloned().fold(0.0, f64::max);
        let min = rates.iter().cloned().fold(f64::INFINITY, f64::min);
        assert!(max / min > 20.0, "sizes span {min}..{max}");
        assert!(world.growth.is_some());
    }

    #[test]
    fn credentials_and_networks_unique() {
        let world = World::build(shape(MAX_PARTNERS)).expect("world builds");
        let mut keys: Vec<&str> = world.apps.iter().map(|a| a.api_key_id.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), world.apps.len(), "API key ids are unique");
        let mut networks: Vec<[u8; 3]> = world
            .partners
            .iter()
            .flat_map(|p| p.networks.clone())
            .collect();
        let total = networks.len();
        networks.sort_unstable();
        networks.dedup();
        assert_eq!(networks.len(), total, "no two partners share a network");
        assert!(!world.spare_networks.iter().any(|n| networks.contains(n)));
    }

    #[test]
    fn id_blocks_do_not_overlap() {
        let world = World::build(shape(40)).expect("world builds");
        for slot in 0..4 {
            let mut blocks: Vec<IdBlock> =
                world.partners.iter().map(|p| p.id_blocks[slot]).collect();
            blocks.sort_by_key(|block| block.first);
            for pair in blocks.windows(2) {
                assert!(pair[0].first + pair[0].size < pair[1].first, "{pair:?}");
            }
        }
    }
}
