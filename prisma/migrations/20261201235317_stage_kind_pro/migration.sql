-- AlterEnum
ALTER TYPE "StageKind" ADD VALUE 'pro';
