// Runs once, on the first start with an empty data volume (docker-entrypoint-initdb.d):
// the application user may read and write the gpu_analytics database and nothing else.
const dbName = process.env.MONGODB_APP_DATABASE;
db.getSiblingDB(dbName).createUser({
  user: process.env.MONGODB_APP_USERNAME,
  pwd: process.env.MONGODB_APP_PASSWORD,
  roles: [{ role: "readWrite", db: dbName }],
});
