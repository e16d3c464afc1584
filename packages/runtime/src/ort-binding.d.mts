export declare const CUDA_PROVIDER_LIBRARIES: readonly string[];
export declare function ortBindingDir(): string;
export declare function missingCudaProviderLibraries(): string[];
