-- AlterEnum
ALTER TYPE "StageKind" ADD VALUE 'dpo';
