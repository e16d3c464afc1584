// Prisma CLI configuration (Prisma 7 reads the database URL from here, not from the schema).
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  // Optional so that `prisma generate` works without a database.
  datasource: { url: process.env.DATABASE_URL },
});
