// Logs in to apitrail's PostgreSQL port with pgJDBC, whose SCRAM-SHA-256
// code is separate from libpq's. Run as a single-file program:
//   java -cp /usr/share/java/postgresql.jar JdbcLogin.java HOST:PORT USER PASSWORD
// Checks that the password logs in and that a wrong one fails with 28P01.
// Exits non-zero with a message when a check fails.

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.Properties;

public class JdbcLogin {
    static Connection connect(String address, String user, String password) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.setProperty("password", password);
        props.setProperty("connectTimeout", "10");
        props.setProperty("sslmode", "disable");
        return DriverManager.getConnection("jdbc:postgresql://" + address + "/apitrail", props);
    }

    public static void main(String[] args) throws Exception {
        String address = args[0];
        String user = args[1];
        String password = args[2];
        try (Connection conn = connect(address, user, password);
             ResultSet rs = conn.createStatement().executeQuery("SELECT 41 + 1")) {
            if (!rs.next() || rs.getLong(1) != 42) {
                throw new AssertionError("SELECT 41 + 1 did not return 42");
            }
        }
        try (Connection conn = connect(address, user, password + "x")) {
            throw new AssertionError("a wrong password logged in");
        } catch (SQLException e) {
            if (!"28P01".equals(e.getSQLState())) {
                throw new AssertionError("wrong password gave SQLSTATE " + e.getSQLState() + ": " + e.getMessage());
            }
        }
        System.out.println("ok jdbc login");
    }
}
