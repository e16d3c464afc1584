-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "baseModelKey" TEXT,
ADD COLUMN     "modelId" TEXT,
ALTER COLUMN "modelPreset" DROP NOT NULL;

-- CreateTable
CREATE TABLE "Model" (
    "id" TEXT NOT NULL,
    "teamId" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "architecture" TEXT NOT NULL,
    "modelType" TEXT NOT NULL,
    "config" JSONB NOT NULL,
    "parameterCount" BIGINT NOT NULL,
    "dtype" TEXT NOT NULL,
    "contextLength" INTEGER NOT NULL,
    "vocabSize" INTEGER NOT NULL,
    "hasTokenizer" BOOLEAN NOT NULL,
    "hasChatTemplate" BOOLEAN NOT NULL,
    "files" JSONB NOT NULL,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Model_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Model_teamId_createdAt_idx" ON "Model"("teamId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Model_teamId_name_key" ON "Model"("teamId", "name");

-- AddForeignKey
ALTER TABLE "Model" ADD CONSTRAINT "Model_teamId_fkey" FOREIGN KEY ("teamId") REFERENCES "Team"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Run" ADD CONSTRAINT "Run_modelId_fkey" FOREIGN KEY ("modelId") REFERENCES "Model"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
