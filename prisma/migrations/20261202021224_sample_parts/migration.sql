-- AlterTable
ALTER TABLE "Sample" ADD COLUMN     "parts" JSONB;
