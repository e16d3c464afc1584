-- AlterEnum
ALTER TYPE "StageKind" ADD VALUE 'eval';
