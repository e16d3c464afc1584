-- AlterEnum
ALTER TYPE "StageKind" ADD VALUE 'grpo';
