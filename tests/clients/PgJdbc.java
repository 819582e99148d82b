// Checks apitrail's PostgreSQL port with pgJDBC, as DBeaver, Metabase and
// Tableau connect. Run as a single-file program:
//   java -cp /usr/share/java/postgresql.jar PgJdbc.java HOST:PORT TOTAL EXPECTED
// where EXPECTED is "path=micros,path=micros,..." from the HTTP API.
// Exits non-zero with a message when a check fails.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

public class PgJdbc {
    static void check(boolean condition, String message) {
        if (!condition) {
            throw new AssertionError(message);
        }
    }

    static long micros(Timestamp value) {
        return value.getTime() / 1000 * 1_000_000 + (value.getNanos() / 1000) % 1_000_000;
    }

    public static void main(String[] args) throws Exception {
        String address = args[0];
        long total = Long.parseLong(args[1]);
        List<String> expected = List.of(args[2].split(","));

        Properties props = new Properties();
        props.setProperty("user", "apitrail");
        props.setProperty("connectTimeout", "10");
        props.setProperty("binaryTransfer", "true");
        String url = "jdbc:postgresql://" + address + "/apitrail";
        try (Connection conn = DriverManager.getConnection(url, props)) {
            DatabaseMetaData meta = conn.getMetaData();
            check(meta.getDatabaseMajorVersion() == 16,
                "database major version is " + meta.getDatabaseMajorVersion());

            List<String> tables = new ArrayList<>();
            try (ResultSet rs = meta.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"})) {
                while (rs.next()) {
                    tables.add(rs.getString("TABLE_NAME"));
                }
            }
            check(tables.contains("events"), "getTables lacks events: " + tables);

            Map<String, String> columns = new HashMap<>();
            try (ResultSet rs = meta.getColumns(null, "public", "events", "%")) {
                while (rs.next()) {
                    columns.put(rs.getString("COLUMN_NAME"), rs.getString("TYPE_NAME"));
                }
            }
            Map<String, String> expectedTypes = Map.of(
                "time", "timestamptz",
                "status", "int4",
                "path", "text",
                "request_bytes", "int8",
                "duration_ms", "float8");
            for (Map.Entry<String, String> entry : expectedTypes.entrySet()) {
                String got = columns.get(entry.getKey());
                check(entry.getValue().equals(got),
                    "getColumns type of " + entry.getKey() + " is " + got + ", expected "
                        + entry.getValue() + "; all columns: " + columns);
            }

            try (Statement st = conn.createStatement();
                 ResultSet rs = st.executeQuery("SELECT count(*) FROM events")) {
                check(rs.next() && rs.getLong(1) == total, "count(*) is not " + total);
            }

            // prepareThreshold defaults to 5: from the fifth execution the driver
            // uses a named server-side statement and binary results.
            String sql = "SELECT path, time FROM events WHERE status = ? ORDER BY time, path LIMIT ?";
            try (PreparedStatement ps = conn.prepareStatement(sql)) {
                for (int execution = 1; execution <= 10; execution++) {
                    ps.setInt(1, 200);
                    ps.setInt(2, expected.size());
                    List<String> got = new ArrayList<>();
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            got.add(rs.getString(1) + "=" + micros(rs.getTimestamp(2)));
                        }
                    }
                    check(got.equals(expected),
                        "execution " + execution + " returned " + got + ", HTTP API says " + expected);
                }
            }
        }
        System.out.println("ok jdbc");
    }
}
