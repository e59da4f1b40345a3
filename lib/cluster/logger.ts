/** Where the runtime writes. The Nest adapter passes a Nest `Logger`; standalone, the console is used. */
export interface ClusterLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, stack?: string): void;
}

export const consoleLogger: ClusterLogger = {
  log: (message) => console.log(`[nestjs-grains] ${message}`),
  warn: (message) => console.warn(`[nestjs-grains] ${message}`),
  error: (message, stack) => console.error(`[nestjs-grains] ${message}${stack ? `\n${stack}` : ''}`),
};
