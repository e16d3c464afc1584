-- DropIndex
DROP INDEX "Dataset_teamId_sha256_key";

-- CreateIndex
CREATE UNIQUE INDEX "Dataset_teamId_sha256_name_kind_key" ON "Dataset"("teamId", "sha256", "name", "kind");
