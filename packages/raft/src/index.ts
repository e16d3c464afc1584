// @rlhf/raft: reward-ranked fine-tuning (Dong et al. 2023).
export { type RaftInput, selectKept, trainRaft } from './raft.js';
