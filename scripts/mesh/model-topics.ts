/**
 * Event topics of the mesh model. A topic is the fully-qualified event
 * message, which is also the DomainEvent.type consumers route on (see
 * proto/common/v1/event.proto). A service publishes messages of its own
 * proto/<name>/v1/events.proto only; what it consumes must have a publisher.
 */
import type { Contracts } from "@leadmesh/platform";
import type { ServiceDeclaration } from "./topology";

const WILDCARD = ".*";

/** The events.proto file of a proto package, e.g. "leads/v1/events.proto". */
export function eventsFileOf(protoPackage: string): string {
  return `${protoPackage.replace(/\./g, "/")}/events.proto`;
}

/** A service's topics, fully-qualified, with "<package>.*" expanded to what that package's service publishes. */
export function eventTopics(service: ServiceDeclaration, all: ServiceDeclaration[]): { publishes: string[]; consumes: string[] } {
  const publishes = service.publishes.map((event) => `${service.package}.${event}`);
  const consumes = service.consumes.flatMap((topic) => {
    if (!topic.endsWith(WILDCARD)) return [topic];
    const protoPackage = topic.slice(0, -WILDCARD.length);
    return all.filter((candidate) => candidate.package === protoPackage).flatMap((publisher) => publisher.publishes.map((event) => `${protoPackage}.${event}`));
  });
  return { publishes, consumes: [...new Set(consumes)] };
}

/** Topics that name no event message in proto/, and consumed topics nobody publishes. */
export function topicProblems(services: ServiceDeclaration[], source: Contracts): string[] {
  const problems: string[] = [];
  const published = new Set(services.flatMap((service) => eventTopics(service, services).publishes));
  for (const service of services) {
    const file = eventsFileOf(service.package);
    const declared = new Set(source.registry.getFile(file)?.messages.map((message) => message.name) ?? []);
    for (const event of service.publishes) {
      if (!declared.has(event)) problems.push(`services.${service.name}.publishes: "${event}" is not a message of proto/${file}`);
    }
    for (const topic of service.consumes) {
      if (topic.endsWith(WILDCARD)) {
        const protoPackage = topic.slice(0, -WILDCARD.length);
        if (!services.some((candidate) => candidate.package === protoPackage && candidate.publishes.length > 0)) {
          problems.push(`services.${service.name}.consumes: "${topic}": no service of package ${protoPackage} publishes anything`);
        }
      } else if (!published.has(topic)) {
        problems.push(`services.${service.name}.consumes: "${topic}" is published by no service (see each service's publishes)`);
      }
    }
  }
  return problems;
}
