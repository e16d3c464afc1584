-- AlterTable
ALTER TABLE "Run" ADD COLUMN     "admittedAt" TIMESTAMP(3),
ADD COLUMN     "priority" INTEGER;

-- AlterTable
ALTER TABLE "Stage" ADD COLUMN     "modelKey" TEXT;
