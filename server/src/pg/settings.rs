//! Server settings reported to PostgreSQL clients, and the SQL functions
//! that read them: `version()`, `current_setting()` and `set_config()`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};
use datafusion::prelude::SessionContext;

/// PostgreSQL release whose behaviour clients should expect.
pub const SERVER_VERSION: &str = "16.6";
/// `server_version_num` for [`SERVER_VERSION`].
pub const SERVER_VERSION_NUM: &str = "160006";

/// Text of `SELECT version()`, in the form PostgreSQL uses, which drivers
/// parse for the major version.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (apitrail {}) on {}-pc-linux-gnu, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH,
    )
}

/// Settings with fixed values, as `(name, value)`; names are lower case.
/// Clients read these from the startup message, `SHOW` or `current_setting`.
pub const FIXED_SETTINGS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_version_num", SERVER_VERSION_NUM),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("intervalstyle", "postgres"),
    ("timezone", "UTC"),
    ("integer_datetimes", "on"),
    ("standard_conforming_strings", "on"),
    ("default_transaction_read_only", "on"),
    ("transaction_read_only", "on"),
    ("transaction_isolation", "read committed"),
    ("default_transaction_isolation", "read committed"),
    ("in_hot_standby", "off"),
    ("is_superuser", "off"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("block_size", "8192"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("lc_messages", "C.UTF-8"),
    ("search_path", "\"$user\", public"),
    ("application_name", ""),
    ("extra_float_digits", "1"),
    ("bytea_output", "hex"),
    ("statement_timeout", "0"),
    ("ssl", "off"),
];

/// Settings sent as ParameterStatus messages at startup, with the names
/// PostgreSQL 16 uses there.
pub const STARTUP_PARAMETERS: &[(&str, &str)] = &[
    ("server_version", SERVER_VERSION),
    ("server_encoding", "UTF8"),
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("IntervalStyle", "postgres"),
    ("TimeZone", "UTC"),
    ("integer_datetimes", "on"),
    ("standard_conforming_strings", "on"),
    ("default_transaction_read_only", "on"),
    ("in_hot_standby", "off"),
    ("is_superuser", "off"),
];

/// Returns the fixed value of setting `name`, matched without regard to case.
pub fn fixed_setting(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    FIXED_SETTINGS
        .iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| *value)
}

/// Registers `version()`, `current_setting()` and `set_config()` on `ctx`,
/// replacing DataFusion's own `version()`.
pub fn register_functions(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(Version::new()));
    ctx.register_udf(ScalarUDF::new_from_impl(CurrentSetting::new()));
    // apitrail has no sequences, so no column has a serial sequence.
    ctx.register_udf(create_udf(
        "pg_get_serial_sequence",
        vec![DataType::Utf8, DataType::Utf8],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(|_: &[ColumnarValue]| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
    ));
    ctx.register_udf(create_udf(
        "to_regtype",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Stable,
        Arc::new(to_regtype),
    ));
    // NOTE: set_config() returns the new value, as PostgreSQL does, but does
    // not store it: the function has no access to the connection's settings.
    // `SET` statements are stored per connection.
    ctx.register_udf(create_udf(
        "set_config",
        vec![DataType::Utf8, DataType::Utf8, DataType::Boolean],
        DataType::Utf8,
        Volatility::Volatile,
        Arc::new(|args: &[ColumnarValue]| Ok(args[1].clone())),
    ));
}

/// Built-in type names and their OIDs, as in PostgreSQL's `pg_type.dat`.
const BUILTIN_TYPE_OIDS: &[(&str, i32)] = &[
    ("bool", 16),
    ("boolean", 16),
    ("bytea", 17),
    ("int8", 20),
    ("bigint", 20),
    ("int2", 21),
    ("smallint", 21),
    ("int4", 23),
    ("integer", 23),
    ("text", 25),
    ("oid", 26),
    ("json", 114),
    ("float4", 700),
    ("real", 700),
    ("float8", 701),
    ("double precision", 701),
    ("varchar", 1043),
    ("character varying", 1043),
    ("date", 1082),
    ("time", 1083),
    ("timestamp", 1114),
    ("timestamptz", 1184),
    ("timestamp with time zone", 1184),
    ("interval", 1186),
    ("numeric", 1700),
    ("uuid", 2950),
    ("jsonb", 3802),
];

/// `to_regtype(name)`: the OID of a built-in type, or NULL for any other
/// name, since apitrail defines no types of its own. Drivers call it to
/// probe for extension types such as `hstore`.
fn to_regtype(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let lookup = |name: &str| {
        let name = name
            .trim()
            .trim_start_matches("pg_catalog.")
            .to_ascii_lowercase();
        BUILTIN_TYPE_OIDS
            .iter()
            .find(|(type_name, _)| *type_name == name)
            .map(|(_, oid)| *oid)
    };
    match &args[0] {
        ColumnarValue::Scalar(ScalarValue::Utf8(name)) => Ok(ColumnarValue::Scalar(
            ScalarValue::Int32(name.as_deref().and_then(lookup)),
        )),
        ColumnarValue::Array(array) => {
            let Some(names) = array.as_any().downcast_ref::<StringArray>() else {
                return exec_err!("to_regtype expects a text type name");
            };
            let oids: datafusion::arrow::array::Int32Array =
                names.iter().map(|name| name.and_then(lookup)).collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }
        other => exec_err!(
            "to_regtype expects a text type name, got {}",
            other.data_type()
        ),
    }
}

/// `version()`, returning [`version_string`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct Version {
    signature: Signature,
    text: String,
}

impl Version {
    fn new() -> Self {
        Version {
            signature: Signature::nullary(Volatility::Immutable),
            text: version_string(),
        }
    }
}

impl ScalarUDFImpl for Version {
    fn name(&self) -> &str {
        "version"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
            self.text.clone(),
        ))))
    }
}

/// `current_setting(name [, missing_ok])` over [`FIXED_SETTINGS`].
#[derive(Debug, PartialEq, Eq, Hash)]
struct CurrentSetting {
    signature: Signature,
}

impl CurrentSetting {
    fn new() -> Self {
        CurrentSetting {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![DataType::Utf8]),
                    TypeSignature::Exact(vec![DataType::Utf8, DataType::Boolean]),
                ],
                Volatility::Stable,
            ),
        }
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let missing_ok = match args.args.get(1) {
            Some(ColumnarValue::Scalar(ScalarValue::Boolean(Some(flag)))) => *flag,
            _ => false,
        };
        let names: ArrayRef = args.args[0].to_array(args.number_rows)?;
        let Some(names) = names.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("current_setting expects a text setting name");
        };
        let mut values = StringBuilder::with_capacity(names.len(), names.len() * 8);
        for index in 0..names.len() {
            if names.is_null(index) {
                values.append_null();
                continue;
            }
            let name = names.value(index);
            match fixed_setting(name) {
                Some(value) => values.append_value(value),
                None if missing_ok => values.append_null(),
                None => return exec_err!("unrecognized configuration parameter \"{name}\""),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(values.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_names_postgresql_16() {
        let version = version_string();
        assert!(
            version.starts_with("PostgreSQL 16."),
            "version() must start like PostgreSQL 16: {version}"
        );
    }

    #[test]
    fn settings_match_case_insensitively() {
        assert_eq!(fixed_setting("DateStyle"), Some("ISO, MDY"));
        assert_eq!(
            fixed_setting("server_version_num"),
            Some(SERVER_VERSION_NUM)
        );
        assert_eq!(fixed_setting("no_such_setting"), None);
    }

    #[test]
    fn to_regtype_knows_builtins_only() {
        let call = |name: &str| {
            let value = ColumnarValue::Scalar(ScalarValue::Utf8(Some(name.to_owned())));
            match to_regtype(&[value]).expect("to_regtype on a scalar") {
                ColumnarValue::Scalar(ScalarValue::Int32(oid)) => oid,
                other => panic!("to_regtype returned {other:?}"),
            }
        };
        assert_eq!(call("int4"), Some(23));
        assert_eq!(call("pg_catalog.text"), Some(25));
        assert_eq!(call("hstore"), None);
    }
}
