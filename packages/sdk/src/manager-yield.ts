import { context, diag, type ContextManager } from '@opentelemetry/api';

/**
 * A context manager the SDK registered (no other was there) steps aside when the app's OpenTelemetry
 * registers its own later, instead of that registration failing as a duplicate.
 */
export function yieldContextManager(manager: ContextManager): void {
  const original = context.setGlobalContextManager;
  context.setGlobalContextManager = function (this: unknown, next: ContextManager): boolean {
    context.setGlobalContextManager = original;
    // Only if it is still ours that is registered: disable() would take anyone's.
    if (isActive(manager)) {
      context.disable();
      diag.debug('devstack: the app registered its own context manager; the SDK\'s stepped aside');
    }
    return Reflect.apply(original, this, [next]) as boolean;
  };
}

function isActive(manager: ContextManager): boolean {
  const probe = Symbol('devstack.sdk.manager-probe');
  const ctx = context.active().setValue(probe, true);
  // The global manager is ours if running through ours is seen by the global API.
  return manager.with(ctx, () => context.active().getValue(probe) === true);
}
