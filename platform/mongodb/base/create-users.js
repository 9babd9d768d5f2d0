// Runs once, on the first start with an empty data volume (docker-entrypoint-initdb.d):
// - the application user may read and write the gpu_analytics database and nothing else;
// - the exporter's user may read server and replication status (clusterMonitor) and the
//   oplog's database (read on local), which is what mongodb_exporter asks, and no data.
// A volume initialised before a user was added here needs it created by hand (platform/README.md).
const dbName = process.env.MONGODB_APP_DATABASE;
db.getSiblingDB(dbName).createUser({
  user: process.env.MONGODB_APP_USERNAME,
  pwd: process.env.MONGODB_APP_PASSWORD,
  roles: [{ role: "readWrite", db: dbName }],
});
db.getSiblingDB("admin").createUser({
  user: process.env.MONGODB_EXPORTER_USERNAME,
  pwd: process.env.MONGODB_EXPORTER_PASSWORD,
  roles: [
    { role: "clusterMonitor", db: "admin" },
    { role: "read", db: "local" },
  ],
});
