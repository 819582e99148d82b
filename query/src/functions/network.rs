//! Scalar functions over IP addresses stored as text, such as `client_ip`.
//!
//! | function | kind | result |
//! |---|---|---|
//! | `is_private_ip(ip)` | scalar | whether the address is private, loopback, link-local or unspecified, `BOOLEAN` |
//! | `ip_network(ip, prefix_len)` | scalar | the network of the address in CIDR form, such as `203.0.113.0/24`, `TEXT` |
//!
//! Addresses are parsed by the Rust standard library: IPv4 in dotted decimal
//! without leading zeros, IPv6 in any RFC 4291 text form, without a zone
//! (`%eth0`), brackets or port. Text that is not an address gives NULL, never
//! an error, because logs contain junk in address fields. An IPv4-mapped IPv6
//! address (`::ffff:203.0.113.77`), which dual-stack listeners log for IPv4
//! clients, is judged as the IPv4 address it maps, by both functions.
//!
//! `is_private_ip` is true for RFC 1918 (`10.0.0.0/8`, `172.16.0.0/12`,
//! `192.168.0.0/16`), loopback (`127.0.0.0/8`, `::1`), link-local
//! (`169.254.0.0/16`, `fe80::/10`), shared address space for carrier-grade NAT
//! (`100.64.0.0/10`), unique local (`fc00::/7`) and the unspecified addresses
//! (`0.0.0.0`, `::`). It is false for every other address.
//!
//! `ip_network` clears the host bits and writes IPv6 networks in the
//! canonical compressed form of RFC 5952. Its prefix length is any number
//! with a whole value. A negative prefix length, one above 128, or one above
//! 32 for an IPv4 address fails the query with the bound, since a wrong
//! prefix is a mistake in the query rather than in the data.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::{float64_argument, scalar_result, text_argument, text_values};

/// Returns the network functions, for registration.
pub fn network_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::new_from_impl(IsPrivateIp::new()),
        ScalarUDF::new_from_impl(IpNetwork::new()),
    ]
}

/// Parses an address, turning an IPv4-mapped IPv6 address into its IPv4 address.
fn parse_address(text: &str) -> Option<IpAddr> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V6(v6) => Some(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)),
        v4 => Some(v4),
    }
}

fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || is_shared(v4)
                || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
        }
    }
}

/// Returns true when `address` is in `100.64.0.0/10`, the shared address space of RFC 6598.
fn is_shared(address: Ipv4Addr) -> bool {
    let [first, second, ..] = address.octets();
    first == 100 && (second & 0b1100_0000) == 0b0100_0000
}

/// `is_private_ip(ip)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IsPrivateIp {
    signature: Signature,
}

impl IsPrivateIp {
    fn new() -> Self {
        IsPrivateIp {
            signature: Signature::coercible(vec![text_argument()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IsPrivateIp {
    fn name(&self) -> &str {
        "is_private_ip"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let private: BooleanArray = text_values(&arrays[0])?
            .map(|text| parse_address(text?).map(is_private))
            .collect();
        scalar_result(&args.args, Arc::new(private))
    }
}

/// `ip_network(ip, prefix_len)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IpNetwork {
    signature: Signature,
}

impl IpNetwork {
    fn new() -> Self {
        IpNetwork {
            signature: Signature::coercible(
                vec![text_argument(), float64_argument()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for IpNetwork {
    fn name(&self) -> &str {
        "ip_network"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let prefixes: ArrayRef = cast(&arrays[1], &DataType::Float64)?;
        let prefixes = prefixes.as_primitive::<Float64Type>();
        let mut networks = StringBuilder::with_capacity(prefixes.len(), prefixes.len() * 18);
        for (text, prefix) in text_values(&arrays[0])?.zip(prefixes.iter()) {
            let Some(prefix) = prefix else {
                networks.append_null();
                continue;
            };
            let prefix = prefix_length(prefix)?;
            match text.and_then(parse_address) {
                Some(address) => networks.append_value(network(address, prefix)?),
                None => networks.append_null(),
            }
        }
        scalar_result(&args.args, Arc::new(networks.finish()))
    }
}

/// Checks a prefix length against the bounds that hold for every address family.
fn prefix_length(prefix: f64) -> Result<u8> {
    if prefix.fract() != 0.0 || prefix.is_nan() {
        return plan_err!(
            "ip_network: prefix length {prefix} is not a whole number; use 0 to 32 for IPv4 or 0 to 128 for IPv6"
        );
    }
    if prefix < 0.0 {
        return plan_err!(
            "ip_network: prefix length {prefix} is negative; use 0 to 32 for IPv4 or 0 to 128 for IPv6"
        );
    }
    if prefix > 128.0 {
        return plan_err!(
            "ip_network: prefix length {prefix} is beyond 128, the maximum for IPv6 (32 for IPv4)"
        );
    }
    Ok(prefix as u8)
}

/// Writes the network of `address` with `prefix` bits in CIDR form.
fn network(address: IpAddr, prefix: u8) -> Result<String> {
    match address {
        IpAddr::V4(v4) => {
            if prefix > 32 {
                return plan_err!(
                    "ip_network: prefix length {prefix} is beyond 32, the maximum for an IPv4 address such as {v4}"
                );
            }
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Ok(format!("{}/{prefix}", Ipv4Addr::from(u32::from(v4) & mask)))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Ok(format!(
                "{}/{prefix}",
                Ipv6Addr::from(u128::from(v6) & mask)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, AsArray, Int8Array, LargeStringArray, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;

    use super::*;
    use crate::functions::test_support::{error, run, session, texts};

    /// Runs `sql`, which returns one BOOLEAN column, and returns its values.
    async fn booleans(ctx: &datafusion::prelude::SessionContext, sql: &str) -> Vec<Option<bool>> {
        let mut values = Vec::new();
        for batch in run(ctx, sql).await {
            assert_eq!(batch.column(0).data_type(), &DataType::Boolean, "{sql}");
            values.extend(batch.column(0).as_boolean().iter());
        }
        values
    }

    #[tokio::test]
    async fn private_addresses() {
        let ctx = session();
        for address in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.10.20",
            "127.0.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "::ffff:10.0.0.1",
            "::ffff:192.168.1.1",
        ] {
            let sql = format!("SELECT is_private_ip('{address}')");
            assert_eq!(booleans(&ctx, &sql).await, vec![Some(true)], "{address}");
        }
    }

    #[tokio::test]
    async fn public_addresses() {
        let ctx = session();
        for address in [
            "8.8.8.8",
            "203.0.113.77",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.255.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "fec0::1",
            "::ffff:8.8.8.8",
            "::2",
        ] {
            let sql = format!("SELECT is_private_ip('{address}')");
            assert_eq!(booleans(&ctx, &sql).await, vec![Some(false)], "{address}");
        }
    }

    #[tokio::test]
    async fn private_ip_junk_is_null() {
        let ctx = session();
        for text in [
            "",
            "-",
            "unknown",
            "10.0.0",
            "10.0.0.256",
            "010.0.0.1",
            "10.0.0.1:443",
            "[::1]",
            "fe80::1%eth0",
            " 10.0.0.1",
        ] {
            let sql = format!("SELECT is_private_ip('{text}')");
            assert_eq!(booleans(&ctx, &sql).await, vec![None], "{text:?}");
        }
        assert_eq!(
            booleans(&ctx, "SELECT is_private_ip(NULL)").await,
            vec![None],
            "NULL"
        );
    }

    #[tokio::test]
    async fn private_ip_string_layouts() {
        let ctx = session();
        for cast_to in ["VARCHAR", "TEXT", "STRING"] {
            let sql = format!("SELECT is_private_ip(CAST('10.0.0.1' AS {cast_to}))");
            assert_eq!(booleans(&ctx, &sql).await, vec![Some(true)], "{cast_to}");
        }
        let sql = "SELECT is_private_ip(arrow_cast('10.0.0.1', 'LargeUtf8'))";
        assert_eq!(booleans(&ctx, sql).await, vec![Some(true)], "LargeUtf8");
        let sql = "SELECT is_private_ip(arrow_cast('8.8.8.8', 'Utf8View'))";
        assert_eq!(booleans(&ctx, sql).await, vec![Some(false)], "Utf8View");
        let sql = "SELECT is_private_ip(arrow_cast('10.0.0.1', 'Dictionary(Int32, Utf8)'))";
        assert_eq!(booleans(&ctx, sql).await, vec![Some(true)], "dictionary");
    }

    #[tokio::test]
    async fn private_ip_over_column() {
        let ctx = session();
        let schema = Arc::new(Schema::new(vec![Field::new(
            "client_ip",
            DataType::LargeUtf8,
            true,
        )]));
        let addresses = LargeStringArray::from(vec![
            Some("10.0.0.1"),
            None,
            Some("junk"),
            Some("198.51.100.4"),
        ]);
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(addresses)])
            .expect("column matches the schema");
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("one partition");
        ctx.register_table("calls", Arc::new(table))
            .expect("a new table name");
        assert_eq!(
            booleans(&ctx, "SELECT is_private_ip(client_ip) FROM calls").await,
            vec![Some(true), None, None, Some(false)]
        );
    }

    #[tokio::test]
    async fn network_known_values() {
        let ctx = session();
        for (sql, expected) in [
            ("SELECT ip_network('203.0.113.77', 24)", "203.0.113.0/24"),
            ("SELECT ip_network('203.0.113.77', 32)", "203.0.113.77/32"),
            ("SELECT ip_network('203.0.113.77', 0)", "0.0.0.0/0"),
            ("SELECT ip_network('203.0.113.77', 20)", "203.0.112.0/20"),
            ("SELECT ip_network('203.0.113.77', 24.0)", "203.0.113.0/24"),
            (
                "SELECT ip_network('2001:0db8:0000:0001:0000:0000:0000:0001', 48)",
                "2001:db8::/48",
            ),
            (
                "SELECT ip_network('2001:db8:abcd:12::1', 48)",
                "2001:db8:abcd::/48",
            ),
            (
                "SELECT ip_network('2001:db8:abcd:12::1', 64)",
                "2001:db8:abcd:12::/64",
            ),
            ("SELECT ip_network('2001:db8::1', 128)", "2001:db8::1/128"),
            ("SELECT ip_network('2001:db8::1', 0)", "::/0"),
            (
                "SELECT ip_network('::ffff:203.0.113.77', 24)",
                "203.0.113.0/24",
            ),
            (
                "SELECT ip_network('203.0.113.77', arrow_cast(24, 'UInt8'))",
                "203.0.113.0/24",
            ),
            (
                "SELECT ip_network(arrow_cast('203.0.113.77', 'Utf8View'), 16)",
                "203.0.0.0/16",
            ),
        ] {
            assert_eq!(
                texts(&ctx, sql).await,
                vec![Some(expected.to_string())],
                "{sql}"
            );
        }
    }

    #[tokio::test]
    async fn network_nulls_and_junk() {
        let ctx = session();
        for sql in [
            "SELECT ip_network(NULL, 24)",
            "SELECT ip_network('203.0.113.77', NULL)",
            "SELECT ip_network('not an address', 24)",
            "SELECT ip_network('', 24)",
            "SELECT ip_network('300.1.1.1', 24)",
        ] {
            assert_eq!(texts(&ctx, sql).await, vec![None], "{sql}");
        }
    }

    #[tokio::test]
    async fn network_prefix_out_of_bounds() {
        let ctx = session();
        let message = error(&ctx, "SELECT ip_network('203.0.113.77', 33)").await;
        assert!(message.contains("beyond 32"), "IPv4 bound: {message}");
        let message = error(&ctx, "SELECT ip_network('::ffff:203.0.113.77', 48)").await;
        assert!(
            message.contains("beyond 32"),
            "mapped IPv4 bound: {message}"
        );
        let message = error(&ctx, "SELECT ip_network('2001:db8::1', 129)").await;
        assert!(message.contains("beyond 128"), "IPv6 bound: {message}");
        let message = error(&ctx, "SELECT ip_network('203.0.113.77', -1)").await;
        assert!(message.contains("negative"), "negative: {message}");
        let message = error(&ctx, "SELECT ip_network('203.0.113.77', 24.5)").await;
        assert!(message.contains("whole number"), "fraction: {message}");
        let message = error(&ctx, "SELECT ip_network('junk', 200)").await;
        assert!(
            message.contains("beyond 128"),
            "a prefix no family allows fails even on junk: {message}"
        );
    }

    #[tokio::test]
    async fn network_over_columns() {
        let ctx = session();
        let schema = Arc::new(Schema::new(vec![
            Field::new("client_ip", DataType::Utf8, true),
            Field::new("bits", DataType::Int8, true),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("198.51.100.9"),
                    Some("2001:db8:1::7"),
                    None,
                    Some("junk"),
                    Some("10.9.8.7"),
                ])),
                Arc::new(Int8Array::from(vec![
                    Some(24),
                    Some(48),
                    Some(24),
                    Some(24),
                    None,
                ])),
            ],
        )
        .expect("columns match the schema");
        let table = MemTable::try_new(schema, vec![vec![batch]]).expect("one partition");
        ctx.register_table("calls", Arc::new(table))
            .expect("a new table name");
        let networks = texts(&ctx, "SELECT ip_network(client_ip, bits) FROM calls").await;
        assert_eq!(
            networks,
            vec![
                Some("198.51.100.0/24".to_string()),
                Some("2001:db8:1::/48".to_string()),
                None,
                None,
                None,
            ]
        );
        let by_family = texts(
            &ctx,
            "SELECT ip_network(client_ip, CASE WHEN client_ip LIKE '%.%' THEN 24 ELSE 48 END) \
             FROM calls WHERE client_ip IS NOT NULL",
        )
        .await;
        assert_eq!(
            by_family,
            vec![
                Some("198.51.100.0/24".to_string()),
                Some("2001:db8:1::/48".to_string()),
                None,
                Some("10.9.8.0/24".to_string()),
            ],
            "the prefix chosen per family, as docs/functions.md shows"
        );
    }

    #[test]
    fn network_masks_edges() {
        let v4: IpAddr = "255.255.255.255".parse().expect("an address");
        assert_eq!(network(v4, 1).ok().as_deref(), Some("128.0.0.0/1"));
        assert_eq!(network(v4, 31).ok().as_deref(), Some("255.255.255.254/31"));
        let v6: IpAddr = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
            .parse()
            .expect("an address");
        assert_eq!(network(v6, 1).ok().as_deref(), Some("8000::/1"));
        assert_eq!(
            network(v6, 127).ok().as_deref(),
            Some("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127")
        );
    }
}
