-- AlterEnum
ALTER TYPE "StageKind" ADD VALUE 'raft';
