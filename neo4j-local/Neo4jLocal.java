import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.QueryExecutionException;
import org.neo4j.io.ByteUnit;

/**
 * Runs a Neo4j Community DBMS with its Bolt connector, for local development and tests.
 * Arguments: the DBMS home folder, and a file to create once Bolt accepts our credentials. Environment: NEO4J_LOCAL_BOLT_HOST, NEO4J_LOCAL_BOLT_PORT,
 * NEO4J_USER, NEO4J_PASSWORD, NEO4J_LOCAL_PAGECACHE_MB.
 */
public final class Neo4jLocal {
    private Neo4jLocal() {}

    private static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }

    private static void setPassword(DatabaseManagementService dbms, String user, String password) {
        var system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        Map<String, Object> params = Map.of("user", user, "password", password);
        if (!user.equals("neo4j")) {
            system.executeTransactionally(
                    "CREATE OR REPLACE USER $user SET PASSWORD $password CHANGE NOT REQUIRED", params);
            return;
        }
        try {
            system.executeTransactionally(
                    "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED", params);
        } catch (QueryExecutionException e) {
            // Neo4j refuses to "change" a password to itself: then it is already right.
            if (!String.valueOf(e.getMessage()).contains("cannot be the same")) {
                throw e;
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Path home = Path.of(args[0]).toAbsolutePath();
        Path readyFile = Path.of(args[1]).toAbsolutePath();
        String host = env("NEO4J_LOCAL_BOLT_HOST", "127.0.0.1");
        int port = Integer.parseInt(env("NEO4J_LOCAL_BOLT_PORT", "7687"));
        String user = env("NEO4J_USER", "neo4j");
        String password = env("NEO4J_PASSWORD", "customer-graph");
        long pageCacheMb = Long.parseLong(env("NEO4J_LOCAL_PAGECACHE_MB", "512"));

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(home)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress(host, port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                .setConfig(GraphDatabaseSettings.pagecache_memory, ByteUnit.mebiBytes(pageCacheMb))
                .build();
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            System.out.println("neo4j-local: shutting down");
            try {
                Files.deleteIfExists(readyFile);
            } catch (java.io.IOException e) {
                // the file is only a hint; shutdown goes on
            }
            dbms.shutdown();
            stopped.countDown();
        }));

        // The password comes from the settings on every start, so a changed setting takes effect.
        try {
            setPassword(dbms, user, password);
        } catch (RuntimeException e) {
            e.printStackTrace();
            System.exit(1);
        }
        Files.writeString(readyFile, String.valueOf(ProcessHandle.current().pid()));
        System.out.println("neo4j-local: ready on bolt://" + host + ":" + port);
        System.out.flush();
        stopped.await();
    }
}
